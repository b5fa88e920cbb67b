package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// startRegistryAgent starts an agent as `floe agent` does, with its
// schema registry on a free port, on the test etcd and a directory
// bucket.
func startRegistryAgent(t *testing.T, args ...string) *running {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := segments.OpenBucket(context.Background(), t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	var o agentOptions
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.register(fs, false)
	o.registerSchemaRegistry(fs, "")
	if err := fs.Parse(append([]string{
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--schema-registry-addr", "127.0.0.1:0",
		"--memory-limit", "-1", "--lease-ttl", "2s", "--drain-timeout", "2s",
	}, args...)); err != nil {
		t.Fatal(err)
	}
	o.cfg.Security.FailedAuthDelay = time.Millisecond
	r, err := startAgent(context.Background(), slog.New(slog.DiscardHandler), &o, store, bucket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop(10 * time.Second) })
	if r.RegistryURL(false) == "" {
		t.Fatal("the agent serves no schema registry")
	}
	return r
}

func srClient(t *testing.T, r *running, opts ...sr.ClientOpt) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(r.RegistryURL(false))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// srCode is the registry error code of an sr client error (0: none).
func srCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

// TestSchemaRegistryWithFranzGoClient: franz-go's Confluent registry
// client registers, reads, checks and deletes schemas on an agent's
// registry listener, and its serde writes and reads records in
// Confluent's wire format with the IDs it got.
func TestSchemaRegistryWithFranzGoClient(t *testing.T) {
	r := startRegistryAgent(t)
	cl := srClient(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	types, err := cl.SupportedTypes(ctx)
	if err != nil || !slices.Contains(types, sr.TypeAvro) || !slices.Contains(types, sr.TypeProtobuf) || !slices.Contains(types, sr.TypeJSON) {
		t.Fatalf("supported types %v, %v", types, err)
	}
	v1 := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"}]}`
	v2 := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"item","type":"string"},{"name":"qty","type":"int","default":1}]}`
	bad := `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"qty","type":"int"}]}`

	s1, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v1})
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID <= 0 || s1.Version != 1 || s1.Subject != "orders-value" {
		t.Fatalf("created %+v", s1)
	}
	// The same schema under another subject keeps its ID.
	other, err := cl.CreateSchema(ctx, "archive-value", sr.Schema{Schema: v1, Type: sr.TypeAvro})
	if err != nil || other.ID != s1.ID {
		t.Fatalf("the same schema under another subject: %+v %v, want ID %d", other, err, s1.ID)
	}
	got, err := cl.SchemaByID(ctx, s1.ID)
	if err != nil || got.Schema != v1 || got.Type != sr.TypeAvro {
		t.Fatalf("schema %d = %+v %v", s1.ID, got, err)
	}
	text, err := cl.SchemaTextByID(ctx, s1.ID)
	if err != nil || text != v1 {
		t.Fatalf("text of %d = %q %v", s1.ID, text, err)
	}
	found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: v1})
	if err != nil || found.ID != s1.ID || found.Version != 1 {
		t.Fatalf("lookup = %+v %v", found, err)
	}

	// Compatibility: BACKWARD by default.
	check, err := cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: bad})
	if err != nil || check.Is {
		t.Fatalf("checking an incompatible schema: %+v %v", check, err)
	}
	if _, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: bad}); srCode(err) != sr.ErrIncompatibleSchema.Code {
		t.Fatalf("registering an incompatible schema: %v (code %d), want %d", err, srCode(err), sr.ErrIncompatibleSchema.Code)
	}
	if check, err = cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: v2}); err != nil || !check.Is {
		t.Fatalf("checking a compatible schema: %+v %v", check, err)
	}
	s2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v2})
	if err != nil || s2.Version != 2 || s2.ID == s1.ID {
		t.Fatalf("second version: %+v %v", s2, err)
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value")
	if set[0].Err != nil || set[0].Level != sr.CompatFull {
		t.Fatalf("setting FULL: %+v", set[0])
	}
	levels := cl.Compatibility(ctx, "orders-value", "")
	if levels[0].Err != nil || levels[0].Level != sr.CompatFull || levels[1].Err != nil || levels[1].Level != sr.CompatBackward {
		t.Fatalf("levels: %+v", levels)
	}
	latest, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || latest.ID != s2.ID || latest.Version != 2 {
		t.Fatalf("latest = %+v %v", latest, err)
	}
	versions, err := cl.SubjectVersions(ctx, "orders-value")
	if err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Fatalf("versions %v %v", versions, err)
	}

	// A record written in Confluent's wire format with the registered ID
	// reads back with the schema fetched by that ID.
	type order struct {
		ID   int64  `avro:"id"`
		Item string `avro:"item"`
		Qty  int32  `avro:"qty"`
	}
	writer := avro.MustParse(v2)
	var serde sr.Serde
	serde.Register(s2.ID, order{}, sr.EncodeFn(func(v any) ([]byte, error) { return writer.Encode(v) }))
	record, err := serde.Encode(order{ID: 7, Item: "tea", Qty: 3})
	if err != nil {
		t.Fatal(err)
	}
	var hdr sr.ConfluentHeader
	id, payload, err := hdr.DecodeID(record)
	if err != nil || id != s2.ID {
		t.Fatalf("record's schema ID %d %v, want %d", id, err, s2.ID)
	}
	fetched, err := cl.SchemaByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var back order
	if _, err := avro.MustParse(fetched.Schema).Decode(payload, &back); err != nil || back != (order{ID: 7, Item: "tea", Qty: 3}) {
		t.Fatalf("read back %+v %v", back, err)
	}

	// Deletes, and the errors clients tell apart.
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 2, sr.HardDelete); srCode(err) != sr.ErrSchemaVersionNotSoftDeleted.Code {
		t.Fatalf("hard-deleting a version not soft deleted: %v", err)
	}
	deleted, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete)
	if err != nil || !slices.Equal(deleted, []int{2}) {
		t.Fatalf("soft-deleting the subject: %v %v", deleted, err)
	}
	if deleted, err = cl.DeleteSubject(ctx, "orders-value", sr.HardDelete); err != nil || !slices.Equal(deleted, []int{1, 2}) {
		t.Fatalf("hard-deleting the subject: %v %v", deleted, err)
	}
	if _, err := cl.SchemaByVersion(ctx, "orders-value", -1); srCode(err) != sr.ErrSubjectNotFound.Code {
		t.Fatalf("reading the deleted subject: %v", err)
	}
	if _, err := cl.SchemaByID(ctx, s2.ID); srCode(err) != sr.ErrSchemaNotFound.Code {
		t.Fatalf("reading a schema no version holds: %v", err)
	}
	if _, err := cl.SchemaByID(ctx, s1.ID); err != nil {
		t.Fatalf("schema %d, still held by archive-value: %v", s1.ID, err)
	}
	subjects, err := cl.Subjects(ctx)
	if err != nil || !slices.Equal(subjects, []string{"archive-value"}) {
		t.Fatalf("subjects %v %v", subjects, err)
	}
	if _, err := cl.CreateSchema(ctx, "x", sr.Schema{Schema: `{"type":"record"}`}); srCode(err) != sr.ErrInvalidSchema.Code {
		t.Fatalf("registering an invalid schema: %v", err)
	}
}

// TestSchemaRegistryAuthentication: when the Kafka listeners
// authenticate, the registry wants a SCRAM user as HTTP Basic (as
// Confluent's clients send basic.auth.user.info) or a bearer token, and
// refuses others with Confluent's error body.
func TestSchemaRegistryAuthentication(t *testing.T) {
	r := startRegistryAgent(t, "--listener", "SASL_PLAINTEXT://127.0.0.1:0",
		"--sasl-bootstrap-user", "ann:ann-secret", "--http-token", "t0ken")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		opts []sr.ClientOpt
		ok   bool
	}{
		{"no credentials", nil, false},
		{"wrong password", []sr.ClientOpt{sr.BasicAuth("ann", "nope")}, false},
		{"unknown user", []sr.ClientOpt{sr.BasicAuth("bob", "ann-secret")}, false},
		{"wrong token", []sr.ClientOpt{sr.BearerToken("nope")}, false},
		{"SCRAM user", []sr.ClientOpt{sr.BasicAuth("ann", "ann-secret")}, true},
		{"token", []sr.ClientOpt{sr.BearerToken("t0ken")}, true},
	} {
		cl := srClient(t, r, tc.opts...)
		_, err := cl.CreateSchema(ctx, "auth-value", sr.Schema{Schema: `"string"`})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok {
			var re *sr.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 401 || re.ErrorCode != 401 || re.Message == "" {
				t.Errorf("%s: %v (%+v), want 401 with error_code 401 and a message", tc.name, err, re)
			}
		}
	}
}
