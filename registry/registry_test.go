package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/registry"
)

// client talks to a registry served over HTTP on a fresh cluster of the
// test etcd.
type client struct {
	t   testing.TB
	url string
}

func newRegistry(t testing.TB, opts registry.Options) (*client, *metadata.Store) {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(store, opts))
	t.Cleanup(srv.Close)
	return &client{t: t, url: srv.URL}, store
}

// do sends a request (body: a string as is, anything else as JSON) and
// returns the status and body. Every response must be the registry's
// content type.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.schemaregistry.v1+json" {
		c.t.Errorf("%s %s: content type %q", method, path, ct)
	}
	return resp.StatusCode, out
}

// ok sends a request that must succeed and decodes its answer into into.
func (c *client) ok(method, path string, body, into any) {
	c.t.Helper()
	status, out := c.do(method, path, body)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	if into != nil {
		if err := json.Unmarshal(out, into); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, out, err)
		}
	}
}

// fails sends a request that must fail with an HTTP status and error
// code, and returns the message.
func (c *client) fails(method, path string, body any, status, code int) string {
	c.t.Helper()
	got, out := c.do(method, path, body)
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(out, &e); err != nil {
		c.t.Fatalf("%s %s: %d, error body %q is not JSON: %v", method, path, got, out, err)
	}
	if got != status || e.Code != code {
		c.t.Fatalf("%s %s: %d error_code %d (%s), want %d error_code %d", method, path, got, e.Code, e.Message, status, code)
	}
	if e.Message == "" {
		c.t.Errorf("%s %s: error without a message", method, path)
	}
	return e.Message
}

func (c *client) register(subject string, body any) int {
	c.t.Helper()
	var resp struct {
		ID int `json:"id"`
	}
	c.ok("POST", "/subjects/"+subject+"/versions", body, &resp)
	if resp.ID <= 0 {
		c.t.Fatalf("registered under %s with ID %d", subject, resp.ID)
	}
	return resp.ID
}

func avroBody(schema string) map[string]any { return map[string]any{"schema": schema} }

// record is an Avro record named R with the given fields (JSON of each).
func record(fields ...string) string {
	return `{"type":"record","name":"R","namespace":"floe.test","fields":[` + strings.Join(fields, ",") + `]}`
}

const (
	fieldA        = `{"name":"a","type":"int"}`
	fieldAString  = `{"name":"a","type":"string","default":"s"}`
	fieldB        = `{"name":"b","type":"string"}`
	fieldBDefault = `{"name":"b","type":"string","default":"x"}`
)

type subjectSchema struct {
	Subject    string                     `json:"subject"`
	Version    int                        `json:"version"`
	ID         int                        `json:"id"`
	SchemaType string                     `json:"schemaType"`
	References []metadata.SchemaReference `json:"references"`
	Schema     string                     `json:"schema"`
}

func TestRegisterLookupAndRead(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	var root map[string]any
	c.ok("GET", "/", nil, &root)
	if len(root) != 0 {
		t.Errorf("GET / = %v, want {}", root)
	}
	var subjects []string
	c.ok("GET", "/subjects", nil, &subjects)
	if subjects == nil || len(subjects) != 0 {
		t.Errorf("subjects of an empty registry = %#v, want []", subjects)
	}

	v1 := record(fieldA)
	id1 := c.register("orders-value", avroBody(v1))
	// The same schema again, and formatted differently, is the same
	// version and ID.
	if id := c.register("orders-value", avroBody(v1)); id != id1 {
		t.Errorf("registering again gave ID %d, want %d", id, id1)
	}
	spaced := strings.ReplaceAll(strings.ReplaceAll(v1, ",", ",\n  "), ":", " : ")
	if id := c.register("orders-value", map[string]any{"schema": spaced, "schemaType": "AVRO"}); id != id1 {
		t.Errorf("registering with other whitespace gave ID %d, want %d", id, id1)
	}
	// A changed default is a new schema (the canonical form would drop it).
	id2 := c.register("orders-value", avroBody(record(fieldA, fieldBDefault)))
	if id2 == id1 {
		t.Fatalf("a new schema got the old ID %d", id1)
	}
	id3 := c.register("orders-value", avroBody(record(fieldA, `{"name":"b","type":"string","default":"y"}`)))
	if id3 == id2 {
		t.Errorf("a schema with another default got the same ID %d", id2)
	}

	var versions []int
	c.ok("GET", "/subjects/orders-value/versions", nil, &versions)
	if !slices.Equal(versions, []int{1, 2, 3}) {
		t.Errorf("versions = %v, want [1 2 3]", versions)
	}
	for _, tc := range []struct {
		version string
		want    int
	}{{"1", id1}, {"2", id2}, {"latest", id3}, {"-1", id3}} {
		var ss subjectSchema
		c.ok("GET", "/subjects/orders-value/versions/"+tc.version, nil, &ss)
		if ss.ID != tc.want || ss.Subject != "orders-value" || ss.SchemaType != "" {
			t.Errorf("version %s = %+v, want ID %d and no schemaType (AVRO)", tc.version, ss, tc.want)
		}
	}
	_, raw := c.do("GET", "/subjects/orders-value/versions/1/schema", nil)
	if string(raw) != v1 {
		t.Errorf("raw schema of version 1 = %s, want %s", raw, v1)
	}
	_, raw = c.do("GET", fmt.Sprintf("/schemas/ids/%d/schema", id1), nil)
	if string(raw) != v1 {
		t.Errorf("raw schema of ID %d = %s, want %s", id1, raw, v1)
	}
	var byID subjectSchema
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d?subject=whatever", id2), nil, &byID)
	if byID.Schema != record(fieldA, fieldBDefault) {
		t.Errorf("schema %d = %s", id2, byID.Schema)
	}

	// Lookup under the subject: with whitespace, it is found.
	var found subjectSchema
	c.ok("POST", "/subjects/orders-value", avroBody(spaced), &found)
	if found.ID != id1 || found.Version != 1 || found.Schema != v1 {
		t.Errorf("lookup = %+v, want ID %d version 1", found, id1)
	}
	c.fails("POST", "/subjects/orders-value", avroBody(record(fieldB)), 404, 40403)
	c.fails("POST", "/subjects/nobody", avroBody(v1), 404, 40401)
	c.fails("POST", "/subjects/orders-value", avroBody(`{"type":"nope"}`), 422, 42201)

	var types []string
	c.ok("GET", "/schemas/types", nil, &types)
	slices.Sort(types)
	if !slices.Equal(types, []string{"AVRO", "JSON", "PROTOBUF"}) {
		t.Errorf("types = %v", types)
	}
	c.ok("GET", "/subjects", nil, &subjects)
	if !slices.Equal(subjects, []string{"orders-value"}) {
		t.Errorf("subjects = %v", subjects)
	}
	c.ok("GET", "/subjects?subjectPrefix=nope", nil, &subjects)
	if len(subjects) != 0 {
		t.Errorf("subjects with prefix nope = %v", subjects)
	}

	// Errors a reader meets.
	c.fails("GET", "/subjects/nobody/versions", nil, 404, 40401)
	c.fails("GET", "/subjects/nobody/versions/1", nil, 404, 40401)
	c.fails("GET", "/subjects/orders-value/versions/9", nil, 404, 40402)
	c.fails("GET", "/schemas/ids/999", nil, 404, 40403)
	c.fails("GET", "/schemas/ids/999/schema", nil, 404, 40403)
	c.fails("GET", "/nothing/here", nil, 404, 404)
	c.fails("PATCH", "/subjects", nil, 405, 405)

	// Other types: JSON Schema is stored compact; Protobuf as sent.
	jsonID := c.register("j-value", map[string]any{"schemaType": "JSON", "schema": `{ "type": "object" }`})
	var js subjectSchema
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d", jsonID), nil, &js)
	if js.SchemaType != "JSON" || js.Schema != `{"type":"object"}` {
		t.Errorf("JSON schema = %+v", js)
	}
	proto := "syntax = \"proto3\";\nmessage M { string a = 1; }\n"
	protoID := c.register("p-value", map[string]any{"schemaType": "PROTOBUF", "schema": proto})
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d", protoID), nil, &js)
	if js.SchemaType != "PROTOBUF" || js.Schema != proto {
		t.Errorf("Protobuf schema = %+v", js)
	}
}

func TestIDReusedAcrossSubjects(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	s := record(fieldA)
	a := c.register("a-value", avroBody(s))
	other := c.register("c-value", avroBody(record(fieldB)))
	b := c.register("b-value", avroBody(strings.ReplaceAll(s, ",", ", ")))
	if a != b {
		t.Fatalf("the same schema under another subject got ID %d, want %d", b, a)
	}
	if other == a {
		t.Fatalf("another schema got ID %d too", a)
	}
	// Another type with the same text is another schema.
	j := c.register("j-value", map[string]any{"schemaType": "JSON", "schema": s})
	if j == a {
		t.Errorf("a JSON schema of the same text got the Avro schema's ID %d", a)
	}
	var uses []struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d/versions", a), nil, &uses)
	if len(uses) != 2 || uses[0].Subject != "a-value" || uses[1].Subject != "b-value" || uses[0].Version != 1 || uses[1].Version != 1 {
		t.Errorf("versions of ID %d = %+v", a, uses)
	}
	var subjects []string
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d/subjects", a), nil, &subjects)
	if !slices.Equal(subjects, []string{"a-value", "b-value"}) {
		t.Errorf("subjects of ID %d = %v", a, subjects)
	}
}

func TestCompatibility(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	type step struct {
		schema string
		ok     bool
	}
	for _, tc := range []struct {
		level string
		steps []step
	}{
		// BACKWARD: the new schema reads the latest version's data.
		{"BACKWARD", []step{{record(fieldA), true}, {record(fieldA, fieldB), false}, {record(fieldA, fieldBDefault), true}, {record(fieldBDefault), true}}},
		// Only against the latest: a's type changes from what v1 wrote.
		{"BACKWARD", []step{{record(fieldA), true}, {record(fieldBDefault), true}, {record(fieldAString, fieldBDefault), true}}},
		{"BACKWARD_TRANSITIVE", []step{{record(fieldA), true}, {record(fieldBDefault), true}, {record(fieldAString, fieldBDefault), false}}},
		// FORWARD: the latest version reads the new schema's data.
		{"FORWARD", []step{{record(fieldA), true}, {record(fieldA, fieldB), true}, {record(fieldB), false}}},
		{"FORWARD_TRANSITIVE", []step{{record(fieldA, fieldBDefault), true}, {record(fieldA), true}, {record(`{"name":"a","type":"long"}`), false}}},
		{"FULL", []step{{record(fieldA), true}, {record(fieldA, fieldB), false}, {record(fieldA, fieldBDefault), true}, {record(fieldBDefault), false}}},
		{"FULL_TRANSITIVE", []step{{record(fieldA, fieldBDefault), true}, {record(fieldA), true}, {record(fieldA, `{"name":"b","type":"int","default":1}`), false}}},
		{"NONE", []step{{record(fieldA), true}, {record(fieldB), true}, {`"string"`, true}}},
	} {
		subject := "compat-" + strings.ToLower(tc.level) + fmt.Sprint(len(tc.steps))
		c.ok("PUT", "/config/"+subject, map[string]string{"compatibility": tc.level}, nil)
		for i, s := range tc.steps {
			// The check endpoint agrees with registration.
			var check struct {
				IsCompatible bool     `json:"is_compatible"`
				Messages     []string `json:"messages"`
			}
			c.ok("POST", "/compatibility/subjects/"+subject+"/versions?verbose=true", avroBody(s.schema), &check)
			if check.IsCompatible != s.ok || (!s.ok && len(check.Messages) == 0) {
				t.Errorf("%s step %d: compatibility check = %+v, want %v", tc.level, i, check, s.ok)
			}
			if s.ok {
				c.register(subject, avroBody(s.schema))
				continue
			}
			msg := c.fails("POST", "/subjects/"+subject+"/versions", avroBody(s.schema), 409, 409)
			if !strings.Contains(msg, "incompatible with an earlier schema") {
				t.Errorf("%s step %d: message %q", tc.level, i, msg)
			}
		}
	}

	// The check against one version, and the errors it can meet.
	c.ok("PUT", "/config/one", map[string]string{"compatibility": "BACKWARD"}, nil)
	c.register("one", avroBody(record(fieldA)))
	c.ok("PUT", "/config/one", map[string]string{"compatibility": "NONE"}, nil)
	c.register("one", avroBody(record(fieldB)))
	c.ok("PUT", "/config/one", map[string]string{"compatibility": "BACKWARD"}, nil)
	var check struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages"`
	}
	c.ok("POST", "/compatibility/subjects/one/versions/1", avroBody(record(fieldA, fieldBDefault)), &check)
	if !check.IsCompatible || check.Messages != nil {
		t.Errorf("check against version 1 = %+v, want compatible without messages", check)
	}
	c.ok("POST", "/compatibility/subjects/one/versions/latest", avroBody(record(fieldA, fieldBDefault)), &check)
	if check.IsCompatible {
		t.Errorf("check against the latest (b without a default... a missing) = %+v, want incompatible", check)
	}
	c.ok("POST", "/compatibility/subjects/fresh/versions", avroBody(record(fieldA)), &check)
	if !check.IsCompatible {
		t.Errorf("a schema for a new subject is not compatible: %+v", check)
	}
	c.fails("POST", "/compatibility/subjects/fresh/versions/latest", avroBody(record(fieldA)), 404, 40401)
	c.fails("POST", "/compatibility/subjects/one/versions/7", avroBody(record(fieldA)), 404, 40402)
	c.fails("POST", "/compatibility/subjects/one/versions/x", avroBody(record(fieldA)), 422, 42202)
	c.fails("POST", "/compatibility/subjects/one/versions", avroBody(`{"type":"record"}`), 422, 42201)

	// A change of type is incompatible, unless the level is NONE.
	c.register("typed", avroBody(record(fieldA)))
	c.fails("POST", "/subjects/typed/versions", map[string]any{"schemaType": "JSON", "schema": `{"type":"object"}`}, 409, 409)
	// Protobuf and JSON Schema changes are taken as compatible.
	c.register("json", map[string]any{"schemaType": "JSON", "schema": `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`})
	c.register("json", map[string]any{"schemaType": "JSON", "schema": `{"type":"string"}`})
}

func TestDeletes(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	c.ok("PUT", "/config", map[string]string{"compatibility": "NONE"}, nil)
	id1 := c.register("s", avroBody(record(fieldA)))
	id2 := c.register("s", avroBody(record(fieldB)))
	c.register("s", avroBody(record(fieldA, fieldB)))
	shared := c.register("t", avroBody(record(fieldB))) // the same ID as s version 2
	if shared != id2 {
		t.Fatalf("ID %d, want %d", shared, id2)
	}

	var n int
	c.ok("DELETE", "/subjects/s/versions/1", nil, &n)
	if n != 1 {
		t.Errorf("deleted version %d, want 1", n)
	}
	var versions []int
	c.ok("GET", "/subjects/s/versions", nil, &versions)
	if !slices.Equal(versions, []int{2, 3}) {
		t.Errorf("versions after soft delete = %v", versions)
	}
	c.ok("GET", "/subjects/s/versions?deleted=true", nil, &versions)
	if !slices.Equal(versions, []int{1, 2, 3}) {
		t.Errorf("versions with deleted = %v", versions)
	}
	c.ok("GET", "/subjects/s/versions?deletedOnly=true", nil, &versions)
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("deleted versions = %v", versions)
	}
	c.fails("GET", "/subjects/s/versions/1", nil, 404, 40402)
	var ss subjectSchema
	c.ok("GET", "/subjects/s/versions/1?deleted=true", nil, &ss)
	if ss.ID != id1 {
		t.Errorf("deleted version 1 = %+v", ss)
	}
	// A soft-deleted schema is still found by ID.
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d", id1), nil, nil)
	c.fails("DELETE", "/subjects/s/versions/1", nil, 404, 40406)
	c.fails("DELETE", "/subjects/s/versions/2?permanent=true", nil, 404, 40407)
	c.fails("DELETE", "/subjects/s/versions/9", nil, 404, 40402)
	c.fails("DELETE", "/subjects/nobody/versions/1", nil, 404, 40401)
	c.fails("DELETE", "/subjects/s/versions/zero", nil, 422, 42202)

	// Registering a soft-deleted schema again makes a new version with
	// its old ID.
	if id := c.register("s", avroBody(record(fieldA))); id != id1 {
		t.Errorf("re-registered schema got ID %d, want %d", id, id1)
	}
	c.ok("GET", "/subjects/s/versions", nil, &versions)
	if !slices.Equal(versions, []int{2, 3, 4}) {
		t.Errorf("versions after registering again = %v, want [2 3 4]", versions)
	}

	// Permanent delete after a soft one: gone even with deleted=true; the
	// schema stays while version 4 holds it.
	c.ok("DELETE", "/subjects/s/versions/1?permanent=true", nil, &n)
	c.fails("GET", "/subjects/s/versions/1?deleted=true", nil, 404, 40402)
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d", id1), nil, nil)

	// latest is the latest version not deleted.
	c.ok("DELETE", "/subjects/s/versions/latest", nil, &n)
	if n != 4 {
		t.Errorf("deleting latest deleted %d, want 4", n)
	}

	// Whole subjects.
	var deleted []int
	c.fails("DELETE", "/subjects/s?permanent=true", nil, 404, 40405)
	c.ok("DELETE", "/subjects/s", nil, &deleted)
	if !slices.Equal(deleted, []int{2, 3}) {
		t.Errorf("soft-deleting the subject deleted %v, want [2 3]", deleted)
	}
	c.fails("DELETE", "/subjects/s", nil, 404, 40404)
	var subjects []string
	c.ok("GET", "/subjects", nil, &subjects)
	if !slices.Equal(subjects, []string{"t"}) {
		t.Errorf("subjects = %v, want [t]", subjects)
	}
	c.ok("GET", "/subjects?deleted=true", nil, &subjects)
	if !slices.Equal(subjects, []string{"s", "t"}) {
		t.Errorf("subjects with deleted = %v, want [s t]", subjects)
	}
	c.fails("GET", "/subjects/s/versions", nil, 404, 40401)
	c.ok("PUT", "/config/s", map[string]string{"compatibility": "FULL"}, nil)
	c.ok("DELETE", "/subjects/s?permanent=true", nil, &deleted)
	if !slices.Equal(deleted, []int{2, 3, 4}) {
		t.Errorf("permanently deleting the subject deleted %v, want [2 3 4]", deleted)
	}
	c.fails("DELETE", "/subjects/s", nil, 404, 40401)
	c.fails("GET", "/config/s", nil, 404, 40408)
	c.ok("GET", "/subjects?deleted=true", nil, &subjects)
	if !slices.Equal(subjects, []string{"t"}) {
		t.Errorf("subjects after the permanent delete = %v, want [t]", subjects)
	}
	// id1 is held by no version: gone. id2 is still t's.
	c.fails("GET", fmt.Sprintf("/schemas/ids/%d", id1), nil, 404, 40403)
	c.ok("GET", fmt.Sprintf("/schemas/ids/%d", id2), nil, nil)
	// Registered again, a schema gets its old ID back, and the subject
	// starts at version 1.
	if id := c.register("s", avroBody(record(fieldA))); id != id1 {
		t.Errorf("schema registered after its permanent delete got ID %d, want %d", id, id1)
	}
	c.ok("GET", "/subjects/s/versions", nil, &versions)
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("versions of the subject made again = %v", versions)
	}
}

func TestConfig(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	var cfg struct {
		Level string `json:"compatibilityLevel"`
	}
	c.ok("GET", "/config", nil, &cfg)
	if cfg.Level != "BACKWARD" {
		t.Errorf("default level %q, want BACKWARD", cfg.Level)
	}
	var set struct {
		Compatibility string `json:"compatibility"`
	}
	c.ok("PUT", "/config", map[string]string{"compatibility": "forward_transitive"}, &set)
	if set.Compatibility != "FORWARD_TRANSITIVE" {
		t.Errorf("PUT /config answered %q", set.Compatibility)
	}
	c.ok("GET", "/config", nil, &cfg)
	if cfg.Level != "FORWARD_TRANSITIVE" {
		t.Errorf("global level %q after setting it", cfg.Level)
	}
	c.fails("GET", "/config/s", nil, 404, 40408)
	c.ok("GET", "/config/s?defaultToGlobal=true", nil, &cfg)
	if cfg.Level != "FORWARD_TRANSITIVE" {
		t.Errorf("subject level defaulting to global = %q", cfg.Level)
	}
	c.ok("PUT", "/config/s", map[string]string{"compatibility": "NONE"}, nil)
	c.ok("GET", "/config/s", nil, &cfg)
	if cfg.Level != "NONE" {
		t.Errorf("subject level %q, want NONE", cfg.Level)
	}
	c.ok("DELETE", "/config/s", nil, &cfg)
	if cfg.Level != "NONE" {
		t.Errorf("DELETE /config/s answered %q, want the level it had", cfg.Level)
	}
	c.fails("GET", "/config/s", nil, 404, 40408)
	c.fails("DELETE", "/config/s", nil, 404, 40401)
	c.fails("PUT", "/config", map[string]string{"compatibility": "SIDEWAYS"}, 422, 42203)
	c.fails("PUT", "/config/s", map[string]string{}, 422, 42203)
	c.fails("PUT", "/config", "{", 400, 400)
	c.ok("DELETE", "/config", nil, &cfg)
	c.ok("GET", "/config", nil, &cfg)
	if cfg.Level != "BACKWARD" {
		t.Errorf("global level after DELETE /config = %q, want BACKWARD", cfg.Level)
	}
	var mode struct {
		Mode string `json:"mode"`
	}
	c.ok("GET", "/mode", nil, &mode)
	if mode.Mode != "READWRITE" {
		t.Errorf("mode %q", mode.Mode)
	}
	c.ok("PUT", "/mode/s", map[string]string{"mode": "READWRITE"}, nil)
	c.fails("PUT", "/mode", map[string]string{"mode": "IMPORT"}, 422, 42204)
}

func TestReferences(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	address := `{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}`
	user := `{"type":"record","name":"User","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"address","type":"com.example.Address"}]}`
	addrID := c.register("address", avroBody(address))
	ref := map[string]any{"name": "com.example.Address", "subject": "address", "version": 1}
	userBody := map[string]any{"schema": user, "references": []any{ref}}
	userID := c.register("user-value", userBody)
	if userID == addrID {
		t.Fatal("the referring schema got the referenced one's ID")
	}
	var ss subjectSchema
	c.ok("GET", "/subjects/user-value/versions/1", nil, &ss)
	if len(ss.References) != 1 || ss.References[0] != (metadata.SchemaReference{Name: "com.example.Address", Subject: "address", Version: 1}) {
		t.Errorf("references = %+v", ss.References)
	}
	c.ok("POST", "/subjects/user-value", userBody, &ss)
	if ss.ID != userID {
		t.Errorf("lookup with references = %+v", ss)
	}
	// A reference to the latest version is stored as the version it is.
	latest := map[string]any{"schema": user, "references": []any{map[string]any{"name": "com.example.Address", "subject": "address", "version": -1}}}
	if id := c.register("user2-value", latest); id != userID {
		t.Errorf("reference to latest gave ID %d, want %d", id, userID)
	}
	var by []int
	c.ok("GET", "/subjects/address/versions/1/referencedby", nil, &by)
	if !slices.Equal(by, []int{userID}) {
		t.Errorf("referenced by %v, want [%d]", by, userID)
	}
	// Without its reference the schema does not parse; references to
	// what does not exist are refused.
	c.fails("POST", "/subjects/u/versions", avroBody(user), 422, 42201)
	c.fails("POST", "/subjects/u/versions", map[string]any{"schema": user, "references": []any{map[string]any{"name": "com.example.Address", "subject": "nowhere", "version": 1}}}, 422, 42201)
	c.fails("POST", "/subjects/u/versions", map[string]any{"schema": user, "references": []any{map[string]any{"name": "com.example.Address", "subject": "address", "version": 2}}}, 422, 42201)
	c.fails("POST", "/subjects/u/versions", map[string]any{"schema": user, "references": []any{map[string]any{"name": "com.example.Address", "subject": "address", "version": 0}}}, 422, 42201)
	// A referenced version is not deleted.
	c.fails("DELETE", "/subjects/address/versions/1", nil, 422, 42206)
	c.fails("DELETE", "/subjects/address", nil, 422, 42206)
	// Once the referring versions are gone for good, it is.
	for _, s := range []string{"user-value", "user2-value"} {
		c.ok("DELETE", "/subjects/"+s, nil, nil)
		c.ok("DELETE", "/subjects/"+s+"?permanent=true", nil, nil)
	}
	c.ok("GET", "/subjects/address/versions/1/referencedby", nil, &by)
	if len(by) != 0 {
		t.Errorf("referenced by %v after the referring schemas went", by)
	}
	c.ok("DELETE", "/subjects/address/versions/1", nil, nil)
}

// TestConcurrentRegistrations: writers racing each other each get a
// distinct ID for a distinct schema, and one ID for the same schema.
func TestConcurrentRegistrations(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	c.ok("PUT", "/config", map[string]string{"compatibility": "NONE"}, nil)
	const writers, each = 12, 5
	ids := make([][]int, writers)
	same := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				field := fmt.Sprintf(`{"name":"f_%d_%d","type":"int"}`, w, i)
				// Half share one subject, the others have their own.
				subject := fmt.Sprintf("own-%d", w)
				if w%2 == 0 {
					subject = "shared"
				}
				ids[w] = append(ids[w], c.register(subject, avroBody(record(field))))
			}
			same[w] = c.register(fmt.Sprintf("same-%d", w), avroBody(record(`{"name":"same","type":"long"}`)))
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for w := range writers {
		for _, id := range ids[w] {
			if seen[id] {
				t.Errorf("ID %d given twice", id)
			}
			seen[id] = true
		}
		if same[w] != same[0] {
			t.Errorf("the same schema got IDs %d and %d", same[w], same[0])
		}
	}
	if seen[same[0]] {
		t.Errorf("the shared schema's ID %d was given to another", same[0])
	}
	var versions []int
	c.ok("GET", "/subjects/shared/versions", nil, &versions)
	if want := (writers + 1) / 2 * each; len(versions) != want || versions[len(versions)-1] != want {
		t.Errorf("shared subject has versions %v, want 1..%d", versions, want)
	}
}

func TestBadInput(t *testing.T) {
	c, _ := newRegistry(t, registry.Options{})
	c.register("s", avroBody(record(fieldA)))
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		status, code int
	}{
		{"malformed JSON", "POST", "/subjects/s/versions", `{"schema": `, 400, 400},
		{"not an object", "POST", "/subjects/s/versions", `[1,2]`, 422, 422},
		{"schema of the wrong type", "POST", "/subjects/s/versions", `{"schema": 5}`, 422, 422},
		{"no body", "POST", "/subjects/s/versions", nil, 422, 422},
		{"empty schema", "POST", "/subjects/s/versions", map[string]any{"schema": ""}, 422, 42201},
		{"blank schema", "POST", "/subjects/s/versions", map[string]any{"schema": "  \n"}, 422, 42201},
		{"Avro that is not JSON", "POST", "/subjects/s/versions", avroBody("record R {}"), 422, 42201},
		{"invalid Avro", "POST", "/subjects/s/versions", avroBody(`{"type":"record","name":"R","fields":[{"name":"a","type":"Nope"}]}`), 422, 42201},
		{"bad Avro default", "POST", "/subjects/s/versions", avroBody(record(`{"name":"a","type":"int","default":"x"}`)), 422, 42201},
		{"two JSON values", "POST", "/subjects/s/versions", avroBody(`"int" "long"`), 422, 42201},
		{"invalid JSON Schema", "POST", "/subjects/j/versions", map[string]any{"schemaType": "JSON", "schema": "{"}, 422, 42201},
		{"unknown schemaType", "POST", "/subjects/s/versions", map[string]any{"schemaType": "XML", "schema": "<a/>"}, 422, 42201},
		{"huge schema", "POST", "/subjects/s/versions", avroBody(`"` + strings.Repeat("x", metadata.MaxSchemaBytes) + `"`), 422, 42209},
		{"huge body", "POST", "/subjects/s/versions", `{"schema":"` + strings.Repeat(`\"`, 2*metadata.MaxSchemaBytes) + `"}`, 422, 42209},
		{"too many references", "POST", "/subjects/s/versions", map[string]any{"schema": `"int"`, "references": slices.Repeat([]any{map[string]any{"name": "x", "subject": "s", "version": 1}}, metadata.MaxSchemaReferences+1)}, 422, 42201},
		{"reference without a name", "POST", "/subjects/s/versions", map[string]any{"schema": `"int"`, "references": []any{map[string]any{"subject": "s", "version": 1}}}, 422, 42201},
		{"explicit ID", "POST", "/subjects/s/versions", map[string]any{"schema": `"int"`, "id": 777}, 422, 42205},
		{"explicit version", "POST", "/subjects/s/versions", map[string]any{"schema": `"int"`, "version": 9}, 422, 42205},
		{"control character in subject", "POST", "/subjects/a%01b/versions", avroBody(`"int"`), 422, 42208},
		{"version 0", "GET", "/subjects/s/versions/0", nil, 422, 42202},
		{"version -2", "GET", "/subjects/s/versions/-2", nil, 422, 42202},
		{"version too large", "GET", "/subjects/s/versions/2147483648", nil, 422, 42202},
		{"version not a number", "GET", "/subjects/s/versions/first", nil, 422, 42202},
		{"version with a fraction", "GET", "/subjects/s/versions/1.5", nil, 422, 42202},
		{"version to delete", "DELETE", "/subjects/s/versions/%20", nil, 422, 42202},
		{"ID not a number", "GET", "/schemas/ids/abc", nil, 404, 40403},
		{"ID 0", "GET", "/schemas/ids/0", nil, 404, 40403},
		{"ID negative", "GET", "/schemas/ids/-5/versions", nil, 404, 40403},
		{"config malformed", "PUT", "/config/s", `{"compatibility":`, 400, 400},
		{"config of the wrong type", "PUT", "/config/s", `{"compatibility": true}`, 422, 422},
		{"lookup malformed", "POST", "/subjects/s", `nope`, 400, 400},
		{"compatibility malformed", "POST", "/compatibility/subjects/s/versions/latest", `{`, 400, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.fails(tc.method, tc.path, tc.body, tc.status, tc.code)
		})
	}
	c.t = t
	// A huge schema registers nothing, and the registry still works.
	var versions []int
	c.ok("GET", "/subjects/s/versions", nil, &versions)
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("versions after bad input = %v, want [1]", versions)
	}
	// The largest schema allowed registers.
	big := `"` + strings.Repeat("y", metadata.MaxSchemaBytes-2) + `"`
	c.ok("PUT", "/config/big", map[string]string{"compatibility": "NONE"}, nil)
	id := c.register("big", map[string]any{"schemaType": "JSON", "schema": big})
	_, raw := c.do("GET", fmt.Sprintf("/schemas/ids/%d/schema", id), nil)
	if string(raw) != big {
		t.Errorf("the largest schema came back as %d bytes, want %d", len(raw), len(big))
	}
}

// FuzzRequests: no body breaks a handler (a panic would end the
// connection without an answer) and every error is Confluent's JSON.
func FuzzRequests(f *testing.F) {
	c, _ := newRegistry(f, registry.Options{})
	for _, s := range []string{`{"schema":"\"int\""}`, `{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}","references":[{"name":"a","subject":"s","version":-1}]}`, `{"compatibility":"FULL"}`, `{"schemaType":"JSON","schema":"{}"}`, `{`, `null`} {
		f.Add("POST", "s", "1", s)
	}
	f.Fuzz(func(t *testing.T, method, subject, version, body string) {
		if len(body) > 1<<16 {
			return
		}
		c.t = t
		paths := []string{"/subjects/S/versions", "/subjects/S", "/subjects/S/versions/V", "/compatibility/subjects/S/versions/V", "/config/S", "/schemas/ids/V"}
		for _, p := range paths {
			p = strings.NewReplacer("S", urlSegment(subject), "V", urlSegment(version)).Replace(p)
			for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
				req, err := http.NewRequest(m, c.url+p, strings.NewReader(body))
				if err != nil {
					continue
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", m, p, err)
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Errorf("%s %s %q: %d %s", m, p, body, resp.StatusCode, out)
				}
				if resp.StatusCode >= 400 && !json.Valid(out) {
					t.Errorf("%s %s: error body %q is not JSON", m, p, out)
				}
			}
		}
	})
}

func urlSegment(s string) string {
	var b strings.Builder
	for _, r := range []byte(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteByte(r)
		} else {
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// TestProtectedErrorsAreJSON: an authentication failure wrapped around
// the API reaches a client as Confluent's error body.
func TestProtectedErrorsAreJSON(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, _ := newRegistry(t, registry.Options{
		Registerer: reg,
		Protect: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if u, _, ok := r.BasicAuth(); !ok || u != "ann" {
					http.Error(w, "authentication required", http.StatusUnauthorized)
					return
				}
				h.ServeHTTP(w, r)
			})
		},
	})
	msg := c.fails("GET", "/subjects", nil, 401, 401)
	if msg != "authentication required" {
		t.Errorf("message %q", msg)
	}
	req, _ := http.NewRequest("GET", c.url+"/subjects", nil)
	req.SetBasicAuth("ann", "x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with credentials: %d", resp.StatusCode)
	}
	if got := counter(t, reg, "GET /subjects", "200"); got != 1 {
		t.Errorf("requests counted for GET /subjects 200: %v, want 1", got)
	}
	if got := counter(t, reg, "none", "401"); got != 1 {
		t.Errorf("refused requests counted: %v, want 1", got)
	}
}

// counter returns floe_schema_registry_requests_total of a route and
// status.
func counter(t *testing.T, reg *prometheus.Registry, route, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "floe_schema_registry_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/metadata"}, "github.com/twmb/franz-go")
}
