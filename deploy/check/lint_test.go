package main

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// testFlags parses `floe agent --help` and `floe compactor --help` as
// captured in testdata.
func testFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	flags := map[string]map[string]bool{}
	for _, sub := range []string{"agent", "compactor"} {
		help, err := os.ReadFile("testdata/" + sub + "-help.txt")
		if err != nil {
			t.Fatal(err)
		}
		flags[sub] = parseHelpFlags(string(help))
		for _, f := range []string{"etcd-endpoints", "bucket", "http-addr", "log-format", "etcd-max-txn-ops", "log-retention-ms"} {
			if !flags[sub][f] {
				t.Fatalf("parseHelpFlags missed --%s of floe %s", f, sub)
			}
		}
	}
	if !flags["agent"]["kafka-addr"] || flags["compactor"]["kafka-addr"] {
		t.Fatalf("parseHelpFlags mixed up the subcommands' flags")
	}
	return flags
}

func loadFixture(t *testing.T) []object {
	t.Helper()
	objs, err := readFiles([]string{"testdata/floe.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func get[T any](objs []object, name string) T {
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok && nameOf(o) == name {
			return v
		}
	}
	panic("fixture has no " + name)
}

func agentOf(objs []object) *corev1.Container {
	return &get[*appsv1.Deployment](objs, "floe-agent").Spec.Template.Spec.Containers[0]
}

func setEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

func TestLintFixtureIsClean(t *testing.T) {
	if problems := lint(loadFixture(t), testFlags(t)); len(problems) > 0 {
		t.Fatalf("fixture has problems:\n%s", strings.Join(problems, "\n"))
	}
}

// TestLintRules breaks one rule at a time and expects lint to say so.
func TestLintRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(objs []object)
		want   string
	}{
		{"unknown FLOE variable", func(objs []object) {
			setEnv(agentOf(objs), "FLOE_DRAIN_TIMOUT", "10s")
		}, "FLOE_DRAIN_TIMOUT is not a flag of `floe agent`"},
		{"HTTP on loopback", func(objs []object) {
			setEnv(agentOf(objs), "FLOE_HTTP_ADDR", "127.0.0.1:9644")
		}, "must bind all interfaces"},
		{"readiness on /healthz", func(objs []object) {
			agentOf(objs).ReadinessProbe.HTTPGet.Path = "/healthz"
		}, "readiness probe GETs /healthz on port 9644, want /readyz"},
		{"probe on an undeclared port", func(objs []object) {
			agentOf(objs).LivenessProbe.HTTPGet.Port = intstr.FromString("metrics")
		}, "liveness probe port metrics is not a container port"},
		{"advertise the Service", func(objs []object) {
			setEnv(agentOf(objs), "FLOE_ADVERTISE_ADDR", "floe:9092")
		}, "want $(POD_IP):9092"},
		{"POD_IP after its use", func(objs []object) {
			c := agentOf(objs)
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_IP" })
			podIP := c.Env[i]
			c.Env = append(slices.Delete(c.Env, i, i+1), podIP)
		}, "uses $(POD_IP) before it is defined"},
		{"grace period shorter than the drain", func(objs []object) {
			get[*appsv1.Deployment](objs, "floe-agent").Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(30))
		}, "the drain would be killed"},
		{"longer drain timeout", func(objs []object) {
			get[*corev1.ConfigMap](objs, agentEnvFrom(objs, 1)).Data["FLOE_DRAIN_TIMEOUT"] = "90s"
		}, "the drain would be killed"},
		{"replicas beside an autoscaler", func(objs []object) {
			get[*appsv1.Deployment](objs, "floe-agent").Spec.Replicas = new(int32(3))
		}, "sets replicas although a HorizontalPodAutoscaler owns them"},
		{"autoscaler on memory", func(objs []object) {
			get[*autoscalingv2.HorizontalPodAutoscaler](objs, "floe-agent").Spec.Metrics[0].Resource.Name = corev1.ResourceMemory
		}, "does not scale on CPU"},
		{"no CPU request", func(objs []object) {
			delete(agentOf(objs).Resources.Requests, corev1.ResourceCPU)
		}, "has no CPU request"},
		{"disruption budget selects nothing", func(objs []object) {
			get[*policyv1.PodDisruptionBudget](objs, "floe-agent").Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "agents"
		}, "0 PodDisruptionBudgets select its pods"},
		{"Service misses the agents", func(objs []object) {
			get[*corev1.Service](objs, "floe").Spec.Selector["app.kubernetes.io/component"] = "broker"
		}, "no Service sends Kafka traffic"},
		{"one compactor", func(objs []object) {
			get[*appsv1.Deployment](objs, "floe-compactor").Spec.Replicas = new(int32(1))
		}, "fewer than 2 replicas"},
		{"writable root filesystem", func(objs []object) {
			agentOf(objs).SecurityContext.ReadOnlyRootFilesystem = new(false)
		}, "readOnlyRootFilesystem is not true"},
		{"capabilities kept", func(objs []object) {
			agentOf(objs).SecurityContext.Capabilities.Drop = nil
		}, "capabilities do not drop ALL"},
		{"root", func(objs []object) {
			get[*appsv1.Deployment](objs, "floe-compactor").Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot is not true"},
		{"latest image", func(objs []object) {
			agentOf(objs).Image = "registry.example.com/floe:latest"
		}, "has no version tag"},
		{"untagged image", func(objs []object) {
			agentOf(objs).Image = "registry.example.com:5000/floe"
		}, "has no version tag"},
		{"missing ConfigMap", func(objs []object) {
			agentOf(objs).EnvFrom[0].ConfigMapRef.Name = "floe-commons"
		}, `envFrom ConfigMap "floe-commons" is not in the manifests`},
		{"retention only on the agents", func(objs []object) {
			setEnv(agentOf(objs), "FLOE_LOG_RETENTION_MS", "3600000")
		}, `FLOE_LOG_RETENTION_MS = "604800000", but Deployment/floe-agent has "3600000"`},
		{"missing ServiceAccount", func(objs []object) {
			get[*appsv1.Deployment](objs, "floe-agent").Spec.Template.Spec.ServiceAccountName = "floe"
		}, `ServiceAccount "floe" is not in the manifests`},
		{"local bucket", func(objs []object) {
			get[*corev1.ConfigMap](objs, agentEnvFrom(objs, 0)).Data["FLOE_BUCKET"] = "file:///var/lib/floe"
		}, "want an s3:// or minio:// URL"},
		{"etcd allows fewer ops than floe sends", func(objs []object) {
			get[*corev1.ConfigMap](objs, agentEnvFrom(objs, 0)).Data["FLOE_ETCD_MAX_TXN_OPS"] = "2048"
		}, "exceeds etcd's --max-txn-ops=1024"},
		{"an etcd member missing from the endpoints", func(objs []object) {
			get[*corev1.ConfigMap](objs, agentEnvFrom(objs, 0)).Data["FLOE_ETCD_ENDPOINTS"] = "http://etcd-0.etcd:2379"
		}, "want every member of StatefulSet/etcd"},
		{"etcd without compaction", func(objs []object) {
			c := &get[*appsv1.StatefulSet](objs, "etcd").Spec.Template.Spec.Containers[0]
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--auto-compaction-mode") })
		}, "etcd has no --auto-compaction-mode"},
		{"two etcd members", func(objs []object) {
			get[*appsv1.StatefulSet](objs, "etcd").Spec.Replicas = new(int32(2))
		}, "2 members: want an odd number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := loadFixture(t)
			tt.mutate(objs)
			problems := lint(objs, testFlags(t))
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("want a problem containing %q, got:\n%s", tt.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// agentEnvFrom is the name of the agent's i-th envFrom ConfigMap (names
// carry kustomize's hash).
func agentEnvFrom(objs []object, i int) string {
	return agentOf(objs).EnvFrom[i].ConfigMapRef.Name
}

func TestSchemaFile(t *testing.T) {
	objs := loadFixture(t)
	var got []string
	for _, o := range objs {
		got = append(got, schemaFile(o.GVK))
	}
	for _, want := range []string{"deployment-apps-v1.json", "service-v1.json", "horizontalpodautoscaler-autoscaling-v2.json", "poddisruptionbudget-policy-v1.json", "statefulset-apps-v1.json"} {
		if !slices.Contains(got, want) {
			t.Errorf("schema files %v lack %s", got, want)
		}
	}
}

func TestSchemaOfContainer(t *testing.T) {
	s := schemaOf(reflect.TypeFor[appsv1.Deployment]())
	defs := s["definitions"].(map[string]jsonSchema)
	c := defs["k8s.io.api.core.v1.Container"]
	if c == nil {
		t.Fatalf("no Container definition among %d", len(defs))
	}
	if c["additionalProperties"] != false {
		t.Errorf("Container allows unknown fields")
	}
	if req, _ := c["required"].([]string); !slices.Equal(req, []string{"name"}) {
		t.Errorf("Container required = %v, want [name]", c["required"])
	}
	props := c["properties"].(jsonSchema)
	if _, ok := props["readinessProbe"]; !ok {
		t.Errorf("Container has no readinessProbe property")
	}
	// Inline structs contribute their fields: Probe embeds ProbeHandler.
	if _, ok := defs["k8s.io.api.core.v1.Probe"]["properties"].(jsonSchema)["httpGet"]; !ok {
		t.Errorf("Probe lacks httpGet from its inline ProbeHandler")
	}
	if q := props["resources"]; q == nil {
		t.Errorf("Container has no resources")
	}
}
