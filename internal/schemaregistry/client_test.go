package schemaregistry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/schemaregistry"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/registry"
)

// newRegistry serves floe's schema registry over the test's etcd, behind
// protect (nil: open).
func newRegistry(t *testing.T, protect func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(store, registry.Options{Protect: protect}))
	t.Cleanup(srv.Close)
	return srv
}

func register(t *testing.T, base, subject, body string, header ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/subjects/"+subject+"/versions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	if len(header) == 2 {
		req.Header.Set(header[0], header[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var id struct{ ID int }
	if resp.StatusCode != 200 || json.Unmarshal(out, &id) != nil {
		t.Fatalf("registering %s: %d %s", subject, resp.StatusCode, out)
	}
	return id.ID
}

func TestClient(t *testing.T) {
	srv := newRegistry(t, nil)
	ctx := context.Background()
	addr := `{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}`
	addrID := register(t, srv.URL, "address", `{"schema":`+quote(addr)+`}`)
	user := `{"type":"record","name":"User","fields":[{"name":"home","type":"Address"}]}`
	userID := register(t, srv.URL, "users-value", `{"schema":`+quote(user)+`,"references":[{"name":"Address","subject":"address","version":1}]}`)
	protoID := register(t, srv.URL, "p-value", `{"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message M { int32 a = 1; }"}`)

	c, err := schemaregistry.New(schemaregistry.Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	latest, err := c.Latest(ctx, "users-value")
	if err != nil {
		t.Fatal(err)
	}
	if latest.ID != userID || latest.Version != 1 || latest.Subject != "users-value" || latest.Type != schemaregistry.Avro || !strings.Contains(latest.Text, "User") ||
		len(latest.References) != 1 || latest.References[0] != (schemaregistry.Reference{Name: "Address", Subject: "address", Version: 1}) {
		t.Errorf("latest: %+v", latest)
	}
	refs, err := c.References(ctx, latest)
	if err != nil || len(refs) != 1 || refs[0].Name != "Address" || refs[0].ID != addrID || !strings.Contains(refs[0].Text, "city") {
		t.Errorf("references: %+v, %v", refs, err)
	}
	p, err := c.ByID(ctx, protoID)
	if err != nil || p.Type != schemaregistry.Protobuf || p.ID != protoID || !strings.Contains(p.Text, "message M") {
		t.Errorf("by ID: %+v, %v", p, err)
	}

	// Not found: the registry's code and message, matching ErrNotFound.
	for _, tc := range []struct {
		get  func() error
		code int
	}{
		{func() error { _, err := c.Latest(ctx, "nope"); return err }, schemaregistry.CodeSubjectNotFound},
		{func() error { _, err := c.Version(ctx, "users-value", 9); return err }, schemaregistry.CodeVersionNotFound},
		{func() error { _, err := c.ByID(ctx, 9999); return err }, schemaregistry.CodeSchemaNotFound},
	} {
		err := tc.get()
		var re *schemaregistry.Error
		if !errors.Is(err, schemaregistry.ErrNotFound) || !errors.As(err, &re) || re.Code != tc.code || re.Message == "" {
			t.Errorf("%v: want code %d and ErrNotFound", err, tc.code)
		}
	}

	// Schemas by ID are cached: read with the registry gone.
	srv.Close()
	if s, err := c.ByID(ctx, protoID); err != nil || s.ID != protoID {
		t.Errorf("cached by ID: %+v, %v", s, err)
	}
	start := time.Now()
	if _, err := c.Latest(ctx, "users-value"); err == nil || errors.Is(err, schemaregistry.ErrNotFound) {
		t.Errorf("latest with the registry gone: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("tries took %v", time.Since(start))
	}
}

// User info is sent as HTTP Basic authentication, a token as a bearer
// token; a context bounds the request.
func TestClientAuthentication(t *testing.T) {
	var seen []string
	var slow bool
	srv := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow {
				time.Sleep(300 * time.Millisecond)
			}
			auth := r.Header.Get("Authorization")
			seen = append(seen, auth)
			if auth == "" {
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	id := register(t, srv.URL, "s", `{"schema":"\"string\""}`, "Authorization", "Bearer admin")
	ctx := context.Background()
	for _, cfg := range []schemaregistry.Config{
		{URL: srv.URL, UserInfo: "ann:secret"},
		{URL: srv.URL, BearerToken: "tok"},
		{URL: strings.Replace(srv.URL, "http://", "http://bob:pw@", 1)},
	} {
		c, err := schemaregistry.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ByID(ctx, id); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	want := []string{"Bearer admin", "Basic YW5uOnNlY3JldA==", "Bearer tok", "Basic Ym9iOnB3"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("authorization %q, want %q", seen, want)
	}
	c, _ := schemaregistry.New(schemaregistry.Config{URL: srv.URL})
	_, err := c.Latest(ctx, "s")
	var re *schemaregistry.Error
	if !errors.As(err, &re) || re.Status != 401 {
		t.Errorf("without credentials: %v", err)
	}
	slow = true
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Latest(tctx, "s"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the context's deadline: %v", err)
	}
	if _, err := schemaregistry.New(schemaregistry.Config{URL: "localhost:8081"}); err == nil {
		t.Error("a URL without a scheme was taken")
	}
	if _, err := schemaregistry.New(schemaregistry.Config{URL: "http://r", UserInfo: "nopassword"}); err == nil {
		t.Error("user info without a colon was taken")
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(bytes.TrimSpace(b))
}
