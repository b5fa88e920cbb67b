package localstack_test

// No Docker engine runs where floe is tested, so docker-compose.yml cannot
// be brought up here; this test at least parses it and checks the shape
// people rely on: MinIO with its bucket, etcd 3.6, two floe agents that a
// client on the host reaches on localhost:9092 and localhost:9093, and the
// compactor, all from the image built from the repository's Dockerfile.

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// flag returns the value following name in a command line ("" if absent).
func (s composeService) flag(name string) string {
	i := slices.Index(s.Command, name)
	if i < 0 || i+1 >= len(s.Command) {
		return ""
	}
	return s.Command[i+1]
}

// agentDrainTimeout is floe agent's default --drain-timeout.
const agentDrainTimeout = 30 * time.Second

var (
	agents     = []string{"agent-1", "agent-2"}
	floeProcs  = []string{"agent-1", "agent-2", "compactor"}
	allService = []string{"minio", "createbucket", "etcd", "agent-1", "agent-2", "compactor"}
)

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(false)
	if err := dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	return cf
}

func TestComposeParsesAndHasServices(t *testing.T) {
	cf := loadCompose(t)
	for _, name := range allService {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	hostPorts := map[string]string{}
	for name, svc := range cf.Services {
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("service %q has neither image nor build", name)
		}
		for dep := range svc.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %q depends on undefined service %q", name, dep)
			}
		}
		for _, v := range svc.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok || strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue
			}
			if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %q uses undeclared named volume %q", name, src)
			}
		}
		for _, p := range svc.Ports {
			host, _, ok := strings.Cut(p, ":")
			if !ok {
				t.Errorf("service %q publishes %q: want HOST:CONTAINER", name, p)
				continue
			}
			if other, dup := hostPorts[host]; dup {
				t.Errorf("host port %s published by both %q and %q", host, other, name)
			}
			hostPorts[host] = name
		}
	}
}

func TestComposeImages(t *testing.T) {
	cf := loadCompose(t)
	if img := cf.Services["etcd"].Image; !strings.Contains(img, "coreos/etcd:v3.6.") {
		t.Errorf("etcd image = %q, want quay.io/coreos/etcd:v3.6.x", img)
	}
	if img := cf.Services["minio"].Image; !strings.Contains(img, "minio/minio:") {
		t.Errorf("minio image = %q", img)
	}
	cb := cf.Services["createbucket"]
	if !strings.Contains(cb.Image, "minio/mc:") {
		t.Errorf("createbucket image = %q, want minio/mc", cb.Image)
	}
	if script := strings.Join(cb.Command, " "); !strings.Contains(script, "mc mb") || !strings.Contains(script, "local/floe") {
		t.Errorf("createbucket does not create bucket floe: %q", script)
	}
	if c := cb.DependsOn["minio"].Condition; c != "service_healthy" {
		t.Errorf("createbucket waits for minio with condition %q, want service_healthy", c)
	}

	// One service builds the floe image from the repository; the others
	// run that same image (compose builds it before starting any).
	var builders []string
	image := cf.Services["agent-1"].Image
	for _, name := range floeProcs {
		svc := cf.Services[name]
		if svc.Image != image || image == "" {
			t.Errorf("%s image = %q, want the image agent-1 builds (%q)", name, svc.Image, image)
		}
		if svc.Build != nil {
			builders = append(builders, name)
			if svc.Build.Context != ".." || svc.Build.Dockerfile != "Dockerfile" {
				t.Errorf("%s build = %+v, want context .. and dockerfile Dockerfile", name, svc.Build)
			}
		}
	}
	if len(builders) != 1 {
		t.Errorf("services building the floe image: %v, want exactly one", builders)
	}
}

// TestComposeFloeEnvironment checks what every floe process shares: etcd,
// the bucket MinIO gets, and credentials MinIO accepts.
func TestComposeFloeEnvironment(t *testing.T) {
	cf := loadCompose(t)
	minio := cf.Services["minio"]
	etcd := cf.Services["etcd"]
	for _, name := range floeProcs {
		svc := cf.Services[name]
		env := svc.Environment
		if got := env["FLOE_ETCD_ENDPOINTS"]; got != "http://etcd:2379" {
			t.Errorf("%s FLOE_ETCD_ENDPOINTS = %q, want http://etcd:2379", name, got)
		}
		u, err := url.Parse(env["FLOE_BUCKET"])
		if err != nil || u.Scheme != "s3" || u.Host != "floe" ||
			u.Query().Get("endpoint") != "http://minio:9000" || u.Query().Get("path-style") != "true" {
			t.Errorf("%s FLOE_BUCKET = %q, want s3://floe/ on endpoint http://minio:9000 with path-style=true", name, env["FLOE_BUCKET"])
		}
		if env["AWS_ACCESS_KEY_ID"] != minio.Environment["MINIO_ROOT_USER"] ||
			env["AWS_SECRET_ACCESS_KEY"] != minio.Environment["MINIO_ROOT_PASSWORD"] {
			t.Errorf("%s's AWS credentials do not match MinIO's root user", name)
		}
		// Commits are split to fit etcd's --max-txn-ops; floe must not
		// assume more than etcd allows.
		floeOps, err := strconv.Atoi(env["FLOE_ETCD_MAX_TXN_OPS"])
		if err != nil {
			t.Errorf("%s FLOE_ETCD_MAX_TXN_OPS = %q: %v", name, env["FLOE_ETCD_MAX_TXN_OPS"], err)
		} else if etcdOps := etcdFlagInt(t, etcd, "--max-txn-ops"); floeOps > etcdOps {
			t.Errorf("%s FLOE_ETCD_MAX_TXN_OPS = %d, more than etcd's --max-txn-ops=%d", name, floeOps, etcdOps)
		}
		if c := svc.DependsOn["createbucket"].Condition; c != "service_completed_successfully" {
			t.Errorf("%s waits for createbucket with condition %q", name, c)
		}
		if c := svc.DependsOn["etcd"].Condition; c != "service_healthy" {
			t.Errorf("%s waits for etcd with condition %q", name, c)
		}
		if svc.Restart != "unless-stopped" {
			t.Errorf("%s restart = %q, want unless-stopped", name, svc.Restart)
		}
		for k := range env {
			if strings.HasPrefix(k, "FLOE_") && strings.ToUpper(k) != k {
				t.Errorf("%s: environment variable %s: floe reads upper-case names only", name, k)
			}
		}
	}
}

func etcdFlagInt(t *testing.T, etcd composeService, name string) int {
	t.Helper()
	for _, arg := range etcd.Command {
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("etcd %s: %v", arg, err)
			}
			return n
		}
	}
	t.Fatalf("etcd command has no %s", name)
	return 0
}

// TestComposeAgents checks that each agent listens on its own port, tells
// clients the localhost address the host publishes, and is health-checked
// on its own HTTP listener without a shell.
func TestComposeAgents(t *testing.T) {
	cf := loadCompose(t)
	seen := map[string]string{}
	for _, name := range agents {
		svc := cf.Services[name]
		if len(svc.Command) == 0 || svc.Command[0] != "agent" {
			t.Errorf("%s command = %q, want floe agent", name, svc.Command)
			continue
		}
		listen := svc.flag("--kafka-addr")
		host, port, err := net.SplitHostPort(listen)
		if err != nil || host != "0.0.0.0" {
			t.Errorf("%s --kafka-addr = %q, want 0.0.0.0:PORT", name, listen)
			continue
		}
		if adv := svc.flag("--advertise-addr"); adv != "localhost:"+port {
			t.Errorf("%s --advertise-addr = %q, want localhost:%s (what the host publishes)", name, adv, port)
		}
		if !slices.Contains(svc.Ports, port+":"+port) {
			t.Errorf("%s ports = %v, want %s:%s", name, svc.Ports, port, port)
		}
		if other, dup := seen[port]; dup {
			t.Errorf("%s and %s both use Kafka port %s", other, name, port)
		}
		seen[port] = name
		if svc.flag("--zone") == "" {
			t.Errorf("%s has no --zone", name)
		}
		checkHealth(t, name, svc, "/readyz")
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		if err != nil || grace <= agentDrainTimeout {
			t.Errorf("%s stop_grace_period = %q, want longer than --drain-timeout (%v) so a stop drains", name, svc.StopGracePeriod, agentDrainTimeout)
		}
	}
	if seen["9092"] == "" {
		t.Errorf("no agent on localhost:9092 (kcat -b localhost:9092)")
	}
	if len(seen) != len(agents) {
		t.Errorf("agents on ports %v, want %d distinct", seen, len(agents))
	}
}

func TestComposeCompactor(t *testing.T) {
	cf := loadCompose(t)
	svc := cf.Services["compactor"]
	if len(svc.Command) == 0 || svc.Command[0] != "compactor" {
		t.Fatalf("compactor command = %q, want floe compactor", svc.Command)
	}
	checkHealth(t, "compactor", svc, "/healthz")
}

// checkHealth checks that svc binds its HTTP listener on all interfaces,
// publishes it, and is health-checked with `floe health` on path: the image
// has no shell or curl.
func checkHealth(t *testing.T, name string, svc composeService, path string) {
	t.Helper()
	addr := svc.flag("--http-addr")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "0.0.0.0" {
		t.Errorf("%s --http-addr = %q, want 0.0.0.0:PORT", name, addr)
		return
	}
	published := false
	for _, p := range svc.Ports {
		if strings.HasSuffix(p, ":"+port) {
			published = true
		}
	}
	if !published {
		t.Errorf("%s does not publish its HTTP port %s (ports %v)", name, port, svc.Ports)
	}
	if svc.Healthcheck == nil {
		t.Errorf("%s has no healthcheck", name)
		return
	}
	want := []string{"CMD", "/floe", "health", "--url", fmt.Sprintf("http://127.0.0.1:%s%s", port, path)}
	if !slices.Equal(svc.Healthcheck.Test, want) {
		t.Errorf("%s healthcheck = %q, want %q", name, svc.Healthcheck.Test, want)
	}
}
