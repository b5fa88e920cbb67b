package main

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// floeFlags asks bin for the flags of each subcommand the manifests run.
// A subcommand the binary lacks (the compactor while it is being written)
// maps to nil: its variables cannot be checked, and a note says so.
func floeFlags(bin string) (map[string]map[string]bool, []string) {
	flags := map[string]map[string]bool{}
	var notes []string
	for _, sub := range []string{"agent", "compactor"} {
		out, err := exec.Command(bin, sub, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage:\n  floe "+sub) {
			notes = append(notes, fmt.Sprintf("%s has no %q subcommand; its FLOE_* variables are not checked", bin, sub))
			flags[sub] = nil
			continue
		}
		flags[sub] = parseHelpFlags(string(out))
	}
	return flags, notes
}

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)

// parseHelpFlags returns the long flag names in cobra's --help text,
// inherited (global) flags included.
func parseHelpFlags(help string) map[string]bool {
	m := map[string]bool{}
	for _, g := range helpFlag.FindAllStringSubmatch(help, -1) {
		m[g[1]] = true
	}
	return m
}

// envName is the variable floe reads for a flag.
func envName(flag string) string {
	return "FLOE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Defaults of `floe agent` that the rules below need when a manifest does
// not set them.
const (
	defaultDrainTimeout = 30 * time.Second
	// The agent's process allows this beyond --drain-timeout for the
	// writer's last flush and deregistration (cmd/floe/agent.go).
	agentStopSlack = 5 * time.Second
)

// linter collects problems with one rendered overlay.
type linter struct {
	objs     []object
	flags    map[string]map[string]bool
	problems []string
}

func (l *linter) errorf(o object, format string, args ...any) {
	l.problems = append(l.problems, o.String()+": "+fmt.Sprintf(format, args...))
}

// lint checks objs, one rendered overlay, against floe's rules.
func lint(objs []object, flags map[string]map[string]bool) []string {
	l := &linter{objs: objs, flags: flags}
	var agents, compactors []object
	for _, o := range objs {
		if pod := podTemplate(o); pod != nil {
			l.checkPod(o, pod)
			switch pod.Labels["app.kubernetes.io/component"] {
			case "agent":
				agents = append(agents, o)
			case "compactor":
				compactors = append(compactors, o)
			}
		}
	}
	if len(agents) == 0 {
		l.problems = append(l.problems, "no agent workload (label app.kubernetes.io/component=agent)")
	}
	if len(compactors) == 0 {
		l.problems = append(l.problems, "no compactor workload (label app.kubernetes.io/component=compactor)")
	}
	for _, o := range agents {
		l.checkAgent(o)
	}
	for _, o := range compactors {
		l.checkCompactor(o)
	}
	l.checkShared(agents, compactors)
	l.checkEtcd(agents, compactors)
	return l.problems
}

func podTemplate(o object) *corev1.PodTemplateSpec {
	switch w := o.Obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template
	case *appsv1.StatefulSet:
		return &w.Spec.Template
	case *appsv1.DaemonSet:
		return &w.Spec.Template
	}
	return nil
}

func find[T any](l *linter, pred func(T) bool) []T {
	var out []T
	for _, o := range l.objs {
		if v, ok := o.Obj.(T); ok && pred(v) {
			out = append(out, v)
		}
	}
	return out
}

// checkPod holds for every workload: restricted security, pinned images,
// references that resolve, variables defined before use, probes on
// declared ports.
func (l *linter) checkPod(o object, pod *corev1.PodTemplateSpec) {
	if sa := pod.Spec.ServiceAccountName; sa != "" && len(find(l, func(s *corev1.ServiceAccount) bool { return s.Name == sa })) == 0 {
		l.errorf(o, "ServiceAccount %q is not in the manifests", sa)
	}
	psc := pod.Spec.SecurityContext
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		sc := c.SecurityContext
		if !podNonRoot && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
			l.errorf(o, "container %s: runAsNonRoot is not true", c.Name)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			l.errorf(o, "container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			l.errorf(o, "container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			l.errorf(o, "container %s: capabilities do not drop ALL", c.Name)
		}
		if !strings.Contains(c.Image, "@") {
			if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.Contains(c.Image[i:], "/") || strings.HasSuffix(c.Image, ":latest") {
				l.errorf(o, "container %s: image %q has no version tag (set one in the overlay's images:)", c.Name, c.Image)
			}
		}
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil && !isTrue(ef.ConfigMapRef.Optional) && l.configMap(ef.ConfigMapRef.Name) == nil:
				l.errorf(o, "container %s: envFrom ConfigMap %q is not in the manifests", c.Name, ef.ConfigMapRef.Name)
			case ef.SecretRef != nil && !isTrue(ef.SecretRef.Optional) && !l.hasSecret(ef.SecretRef.Name):
				l.errorf(o, "container %s: envFrom Secret %q is not in the manifests", c.Name, ef.SecretRef.Name)
			}
		}
		// $(VAR) expands only to variables defined earlier in env.
		defined := map[string]bool{}
		for _, e := range c.Env {
			for _, ref := range varRefs(e.Value) {
				if !defined[ref] {
					l.errorf(o, "container %s: env %s uses $(%s) before it is defined", c.Name, e.Name, ref)
				}
			}
			defined[e.Name] = true
		}
		for _, arg := range slices.Concat(c.Command, c.Args) {
			for _, ref := range varRefs(arg) {
				if !defined[ref] {
					l.errorf(o, "container %s: argument %q uses $(%s), which env does not define", c.Name, arg, ref)
				}
			}
		}
		for i, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
			if p != nil && p.HTTPGet != nil {
				if _, ok := containerPort(c, p.HTTPGet.Port.String()); !ok {
					what := []string{"startup", "readiness", "liveness"}[i]
					l.errorf(o, "container %s: %s probe port %s is not a container port", c.Name, what, p.HTTPGet.Port.String())
				}
			}
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func varRefs(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// containerPort resolves a probe or Service port (a name or a number).
func containerPort(c corev1.Container, port string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func (l *linter) configMap(name string) *corev1.ConfigMap {
	cms := find(l, func(cm *corev1.ConfigMap) bool { return cm.Name == name })
	if len(cms) == 0 {
		return nil
	}
	return cms[0]
}

func (l *linter) hasSecret(name string) bool {
	return len(find(l, func(s *corev1.Secret) bool { return s.Name == name })) > 0
}

// floeEnv is the environment a floe container sees: envFrom ConfigMaps in
// order, then env (which wins). Secrets' keys are not floe flags and are
// left out.
func (l *linter) floeEnv(c corev1.Container) map[string]corev1.EnvVar {
	env := map[string]corev1.EnvVar{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		if cm := l.configMap(ef.ConfigMapRef.Name); cm != nil {
			for k, v := range cm.Data {
				env[ef.Prefix+k] = corev1.EnvVar{Name: ef.Prefix + k, Value: v}
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	return env
}

// floeContainer finds the container running `floe sub` in a workload.
func (l *linter) floeContainer(o object, sub string) (corev1.Container, map[string]corev1.EnvVar, bool) {
	for _, c := range podTemplate(o).Spec.Containers {
		if len(c.Args) > 0 && c.Args[0] == sub {
			env := l.floeEnv(c)
			l.checkFlags(o, c, sub, env)
			return c, env, true
		}
	}
	l.errorf(o, "no container runs `floe %s` (args: [%s])", sub, sub)
	return corev1.Container{}, nil, false
}

// checkFlags: every FLOE_ variable names a flag of the subcommand; floe
// ignores the others silently, so a typo would go unnoticed.
func (l *linter) checkFlags(o object, c corev1.Container, sub string, env map[string]corev1.EnvVar) {
	flags := l.flags[sub]
	if flags == nil {
		return
	}
	known := map[string]bool{}
	for f := range flags {
		known[envName(f)] = true
	}
	for name := range env {
		if strings.HasPrefix(name, "FLOE_") && !known[name] {
			l.errorf(o, "container %s: %s is not a flag of `floe %s`", c.Name, name, sub)
		}
	}
}

// checkHTTP: the HTTP listener binds every interface on the port the
// probes use, since the kubelet probes the pod IP.
func (l *linter) checkHTTP(o object, c corev1.Container, env map[string]corev1.EnvVar, readyPath string) {
	addr := env["FLOE_HTTP_ADDR"].Value
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (host != "0.0.0.0" && host != "" && host != "::") {
		l.errorf(o, "container %s: FLOE_HTTP_ADDR = %q: must bind all interfaces (0.0.0.0:PORT) for the kubelet's probes", c.Name, addr)
		return
	}
	probes := []struct {
		what, path string
		p          *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", readyPath, c.ReadinessProbe}}
	for _, pr := range probes {
		if pr.path == "" {
			continue
		}
		if pr.p == nil || pr.p.HTTPGet == nil {
			l.errorf(o, "container %s: no %s probe (want GET %s)", c.Name, pr.what, pr.path)
			continue
		}
		got, _ := containerPort(c, pr.p.HTTPGet.Port.String())
		if pr.p.HTTPGet.Path != pr.path || strconv.Itoa(int(got)) != port {
			l.errorf(o, "container %s: %s probe GETs %s on port %d, want %s on %s (FLOE_HTTP_ADDR)", c.Name, pr.what, pr.p.HTTPGet.Path, got, pr.path, port)
		}
	}
}

func (l *linter) checkAgent(o object) {
	c, env, ok := l.floeContainer(o, "agent")
	if !ok {
		return
	}
	l.checkHTTP(o, c, env, "/readyz")
	l.checkStore(o, c, env)

	// Clients connect to the advertised address: the pod IP on the port
	// the listener binds.
	listen := env["FLOE_KAFKA_ADDR"].Value
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host != "0.0.0.0" {
		l.errorf(o, "container %s: FLOE_KAFKA_ADDR = %q, want 0.0.0.0:PORT", c.Name, listen)
	} else if p, ok := containerPort(c, "kafka"); !ok || strconv.Itoa(int(p)) != port {
		l.errorf(o, "container %s: container port \"kafka\" is %d, FLOE_KAFKA_ADDR listens on %s", c.Name, p, port)
	}
	adv := env["FLOE_ADVERTISE_ADDR"]
	if adv.Value != "$(POD_IP):"+port {
		l.errorf(o, "container %s: FLOE_ADVERTISE_ADDR = %q, want $(POD_IP):%s (clients connect to each agent's own address)", c.Name, adv.Value, port)
	}
	if podIP, ok := env["POD_IP"]; !ok || podIP.ValueFrom == nil || podIP.ValueFrom.FieldRef == nil || podIP.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		l.errorf(o, "container %s: POD_IP is not the downward API's status.podIP", c.Name)
	}

	// The kubelet's SIGKILL must not cut the drain short.
	pod := podTemplate(o)
	drain := defaultDrainTimeout
	if v, ok := env["FLOE_DRAIN_TIMEOUT"]; ok {
		if drain, err = time.ParseDuration(v.Value); err != nil {
			l.errorf(o, "FLOE_DRAIN_TIMEOUT = %q: %v", v.Value, err)
		}
	}
	need := drain + agentStopSlack
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace <= need {
		l.errorf(o, "terminationGracePeriodSeconds %v is not longer than preStop + FLOE_DRAIN_TIMEOUT + %v (%v): the drain would be killed", grace, agentStopSlack, need)
	}

	sel, podLabels := selectorOf(o), labels.Set(pod.Labels)
	// Autoscaled on CPU, so the replica count is the autoscaler's.
	hpas := find(l, func(h *autoscalingv2.HorizontalPodAutoscaler) bool {
		r := h.Spec.ScaleTargetRef
		return r.Kind == o.GVK.Kind && r.Name == nameOf(o) && r.APIVersion == o.GVK.GroupVersion().String()
	})
	if len(hpas) != 1 {
		l.errorf(o, "%d HorizontalPodAutoscalers target it, want 1", len(hpas))
	} else {
		cpu := slices.ContainsFunc(hpas[0].Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		})
		if !cpu {
			l.errorf(o, "its HorizontalPodAutoscaler does not scale on CPU")
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			l.errorf(o, "container %s has no CPU request: CPU utilization is relative to it", c.Name)
		}
		if d, ok := o.Obj.(*appsv1.Deployment); ok && d.Spec.Replicas != nil {
			l.errorf(o, "sets replicas although a HorizontalPodAutoscaler owns them: every apply would reset the count")
		}
	}
	if d, ok := o.Obj.(*appsv1.Deployment); ok {
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			l.errorf(o, "rolling updates may take agents away before new ones are ready: set maxUnavailable 0")
		}
	}
	l.checkPDB(o, podLabels, sel)
	svcs := find(l, func(s *corev1.Service) bool {
		return len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) &&
			slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.TargetPort.String() == "kafka" })
	})
	if len(svcs) == 0 {
		l.errorf(o, "no Service sends Kafka traffic (targetPort kafka) to these pods")
	}
}

func (l *linter) checkCompactor(o object) {
	c, env, ok := l.floeContainer(o, "compactor")
	if !ok {
		return
	}
	l.checkHTTP(o, c, env, "")
	l.checkStore(o, c, env)
	if d, ok := o.Obj.(*appsv1.Deployment); ok && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
		l.errorf(o, "fewer than 2 replicas: no standby takes over when the active compactor dies")
	}
	l.checkPDB(o, labels.Set(podTemplate(o).Labels), selectorOf(o))
}

// checkStore: floe needs etcd and a shared bucket; a file:// bucket is
// one machine's disk.
func (l *linter) checkStore(o object, c corev1.Container, env map[string]corev1.EnvVar) {
	if env["FLOE_ETCD_ENDPOINTS"].Value == "" {
		l.errorf(o, "container %s: FLOE_ETCD_ENDPOINTS is not set", c.Name)
	}
	u, err := url.Parse(env["FLOE_BUCKET"].Value)
	if err != nil || (u.Scheme != "s3" && u.Scheme != "minio") || u.Host == "" {
		l.errorf(o, "container %s: FLOE_BUCKET = %q, want an s3:// or minio:// URL", c.Name, env["FLOE_BUCKET"].Value)
	}
}

func (l *linter) checkPDB(o object, podLabels labels.Set, sel labels.Selector) {
	pdbs := find(l, func(p *policyv1.PodDisruptionBudget) bool {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		return err == nil && !s.Empty() && s.Matches(podLabels)
	})
	if len(pdbs) != 1 {
		l.errorf(o, "%d PodDisruptionBudgets select its pods, want 1", len(pdbs))
	}
	if sel == nil || !sel.Matches(podLabels) {
		l.errorf(o, "its selector does not match its own pod template's labels")
	}
}

func selectorOf(o object) labels.Selector {
	var ls *metav1.LabelSelector
	switch w := o.Obj.(type) {
	case *appsv1.Deployment:
		ls = w.Spec.Selector
	case *appsv1.StatefulSet:
		ls = w.Spec.Selector
	case *appsv1.DaemonSet:
		ls = w.Spec.Selector
	}
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return nil
	}
	return s
}

func nameOf(o object) string {
	if m, ok := o.Obj.(metav1.Object); ok {
		return m.GetName()
	}
	return ""
}

// sharedDefaults are topic defaults that agents report and the compactor
// enforces: both must see the same values (`floe compactor --help`).
var sharedDefaults = map[string]string{
	"FLOE_LOG_RETENTION_MS":    "604800000",
	"FLOE_LOG_RETENTION_BYTES": "-1",
	"FLOE_LOG_CLEANUP_POLICY":  "delete",
	"FLOE_CLUSTER":             "default",
	"FLOE_BUCKET":              "",
}

// checkShared: agents and the compactor agree on the cluster, the bucket
// and the topic defaults, or the compactor would apply retention the agents
// do not report, or clean another cluster's data.
func (l *linter) checkShared(agents, compactors []object) {
	var first object
	var firstEnv map[string]corev1.EnvVar
	for _, w := range slices.Concat(agents, compactors) {
		for _, c := range podTemplate(w).Spec.Containers {
			if len(c.Args) == 0 || (c.Args[0] != "agent" && c.Args[0] != "compactor") {
				continue
			}
			env := l.floeEnv(c)
			if firstEnv == nil {
				first, firstEnv = w, env
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(sharedDefaults)) {
				a, b := sharedDefaults[name], sharedDefaults[name]
				if v, ok := firstEnv[name]; ok {
					a = v.Value
				}
				if v, ok := env[name]; ok {
					b = v.Value
				}
				if a != b {
					l.errorf(w, "container %s: %s = %q, but %s has %q: agents and the compactor must agree", c.Name, name, b, first, a)
				}
			}
		}
	}
}

// etcdFlags are the flags docs/operations.md recommends for floe's etcd.
var etcdFlags = []string{
	"--quota-backend-bytes=8589934592",
	"--auto-compaction-mode=periodic",
	"--auto-compaction-retention=5m",
	"--max-txn-ops=",
}

// checkEtcd applies when the manifests run etcd themselves: the
// recommended flags, a quorum-sized odd member count, and floe's endpoints
// and transaction size matching it.
func (l *linter) checkEtcd(agents, compactors []object) {
	for _, o := range l.objs {
		sts, ok := o.Obj.(*appsv1.StatefulSet)
		if !ok || sts.Spec.Template.Labels["app.kubernetes.io/name"] != "etcd" {
			continue
		}
		c := sts.Spec.Template.Spec.Containers[0]
		if !strings.Contains(c.Image, "coreos/etcd:v3.6.") {
			l.errorf(o, "image %q, want quay.io/coreos/etcd:v3.6.x", c.Image)
		}
		args := slices.Concat(c.Command, c.Args)
		maxOps := 128 // etcd's default
		for _, want := range etcdFlags {
			i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, want) })
			if i < 0 {
				l.errorf(o, "etcd has no %s (docs/operations.md)", strings.TrimSuffix(want, "="))
				continue
			}
			if v, ok := strings.CutPrefix(args[i], "--max-txn-ops="); ok {
				if maxOps, _ = strconv.Atoi(v); maxOps <= 0 {
					l.errorf(o, "bad %s", args[i])
				}
			}
		}
		replicas := int32(1)
		if sts.Spec.Replicas != nil {
			replicas = *sts.Spec.Replicas
		}
		if replicas < 3 || replicas%2 == 0 {
			l.errorf(o, "%d members: want an odd number, at least 3, for a quorum that survives a loss", replicas)
		}
		var want []string
		for i := range replicas {
			want = append(want, fmt.Sprintf("http://%s-%d.%s:2379", sts.Name, i, sts.Spec.ServiceName))
		}
		for _, w := range slices.Concat(agents, compactors) {
			for _, fc := range podTemplate(w).Spec.Containers {
				env := l.floeEnv(fc)
				if got := env["FLOE_ETCD_ENDPOINTS"].Value; got != strings.Join(want, ",") {
					l.errorf(w, "container %s: FLOE_ETCD_ENDPOINTS = %q, want every member of %s: %q", fc.Name, got, o, strings.Join(want, ","))
				}
				if v, ok := env["FLOE_ETCD_MAX_TXN_OPS"]; ok {
					if n, err := strconv.Atoi(v.Value); err != nil || n > maxOps {
						l.errorf(w, "container %s: FLOE_ETCD_MAX_TXN_OPS = %q exceeds etcd's --max-txn-ops=%d", fc.Name, v.Value, maxOps)
					}
				}
			}
		}
	}
}
