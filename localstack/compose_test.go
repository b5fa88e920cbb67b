package localstack_test

// No Docker engine runs where floe is tested, so docker-compose.yml cannot
// be brought up here; this test at least parses it and checks the shape
// people rely on: MinIO with its bucket, etcd 3.6, and a floe agent built
// from the repository on port 9092.

import (
	"os"
	"slices"
	"strings"
	"testing"

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
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

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
	for _, name := range []string{"minio", "createbucket", "etcd", "floe"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
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
}

func TestComposeAgent(t *testing.T) {
	cf := loadCompose(t)
	floe := cf.Services["floe"]
	if floe.Build == nil || floe.Build.Context != ".." || floe.Build.Dockerfile != "Dockerfile" {
		t.Errorf("floe build = %+v, want context .. and dockerfile Dockerfile", floe.Build)
	}
	want := "agent --etcd-endpoints http://etcd:2379 --bucket s3://floe/?endpoint=http://minio:9000&path-style=true&region=us-east-1 --kafka-addr 0.0.0.0:9092 --advertise-addr localhost:9092"
	if got := strings.Join(floe.Command, " "); got != want {
		t.Errorf("floe command\n got %q\nwant %q", got, want)
	}
	if !slices.Contains(floe.Ports, "9092:9092") {
		t.Errorf("floe ports = %v, want 9092:9092", floe.Ports)
	}
	if c := floe.DependsOn["createbucket"].Condition; c != "service_completed_successfully" {
		t.Errorf("floe waits for createbucket with condition %q", c)
	}
	if c := floe.DependsOn["etcd"].Condition; c != "service_healthy" {
		t.Errorf("floe waits for etcd with condition %q", c)
	}
	// The agent's S3 credentials must match MinIO's root user.
	minio := cf.Services["minio"]
	if floe.Environment["AWS_ACCESS_KEY_ID"] != minio.Environment["MINIO_ROOT_USER"] ||
		floe.Environment["AWS_SECRET_ACCESS_KEY"] != minio.Environment["MINIO_ROOT_PASSWORD"] {
		t.Errorf("floe's AWS credentials do not match MinIO's root user")
	}
}
