package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/metadata/embedded"
)

func registerText(t *testing.T, s *metadata.Store, subject, text string, refs ...metadata.SchemaReference) metadata.Registered {
	t.Helper()
	reg, err := s.RegisterSchema(ctxT(t), metadata.SchemaRegistration{
		Subject:   subject,
		Schema:    metadata.StoredSchema{Type: metadata.SchemaJSON, Text: text, References: refs},
		Canonical: text,
	})
	if err != nil {
		t.Fatalf("registering %s under %s: %v", text, subject, err)
	}
	return reg
}

func TestSchemaRegistrationAndIDs(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	a := registerText(t, s, "a", `{"a":1}`)
	if a.ID != 1 || a.Version != 1 || !a.New {
		t.Fatalf("first registration = %+v, want ID 1 version 1", a)
	}
	if again := registerText(t, s, "a", `{"a":1}`); again.ID != 1 || again.Version != 1 || again.New {
		t.Errorf("registering again = %+v, want the same version, not new", again)
	}
	if b := registerText(t, s, "b", `{"a":1}`); b.ID != 1 || b.Version != 1 || !b.New {
		t.Errorf("the same schema under b = %+v, want ID 1 as b's version 1", b)
	}
	if c := registerText(t, s, "a", `{"c":1}`); c.ID != 2 || c.Version != 2 {
		t.Errorf("a new schema = %+v, want ID 2 version 2", c)
	}
	// A Check error refuses the registration and is returned as it is.
	refuse := errors.New("refused")
	_, err := s.RegisterSchema(ctx, metadata.SchemaRegistration{
		Subject: "a", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: `{"d":1}`}, Canonical: `{"d":1}`,
		Check: func(_ context.Context, _ *metadata.SchemaView, versions []metadata.SubjectVersion, _ metadata.StoredSchema) error {
			if len(versions) != 2 {
				t.Errorf("Check saw %d versions, want 2", len(versions))
			}
			return refuse
		},
	})
	if err != refuse {
		t.Errorf("registration with a refusing check: %v", err)
	}
	if c := registerText(t, s, "c", `{"e":1}`); c.ID != 3 {
		t.Errorf("after a refused registration the next ID is %d, want 3", c.ID)
	}
	for _, tc := range []struct {
		reg  metadata.SchemaRegistration
		want error
	}{
		{metadata.SchemaRegistration{Subject: "", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: "1"}}, metadata.ErrInvalidSubject},
		{metadata.SchemaRegistration{Subject: strings.Repeat("s", metadata.MaxSubjectBytes+1), Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: "1"}}, metadata.ErrInvalidSubject},
		{metadata.SchemaRegistration{Subject: "x", Schema: metadata.StoredSchema{Type: "XML", Text: "1"}}, metadata.ErrInvalidSchema},
		{metadata.SchemaRegistration{Subject: "x", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: strings.Repeat(" ", metadata.MaxSchemaBytes+1)}}, metadata.ErrSchemaTooLarge},
		// Escaped in JSON, a schema of quotes takes twice its size.
		{metadata.SchemaRegistration{Subject: "x", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: strings.Repeat(`"`, metadata.MaxSchemaBytes)}}, metadata.ErrSchemaTooLarge},
		{metadata.SchemaRegistration{Subject: "x", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: "1", References: []metadata.SchemaReference{{Name: "r", Subject: "nowhere", Version: 1}}}}, metadata.ErrInvalidSchema},
		{metadata.SchemaRegistration{Subject: "x", Schema: metadata.StoredSchema{Type: metadata.SchemaJSON, Text: "1"}, ID: 1}, metadata.ErrSchemaIDNotPermitted},
	} {
		if _, err := s.RegisterSchema(ctx, tc.reg); !errors.Is(err, tc.want) {
			t.Errorf("registering %.40q under %.20q: %v, want %v", tc.reg.Schema.Text, tc.reg.Subject, err, tc.want)
		}
	}
	v, err := s.SchemaView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subjects, err := v.Subjects(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(subjects, []string{"a", "b", "c"}) {
		t.Errorf("subjects = %v", subjects)
	}
}

// TestDeleteSubjectInBatches: a subject with more versions (and
// references) than one transaction may change is deleted whole, on an
// etcd with its default limit of operations in a transaction (the test
// etcds allow more).
func TestDeleteSubjectInBatches(t *testing.T) {
	srv, err := embedded.Start(embedded.Config{Dir: t.TempDir(), MaxTxnOps: metadata.DefaultMaxTxnOps, UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ctx := ctxT(t)
	cli, err := metadata.Dial(ctx, metadata.DialConfig{Endpoints: []string{srv.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	s, err := metadata.NewStore(cli, "batches")
	if err != nil {
		t.Fatal(err)
	}
	var refs []metadata.SchemaReference
	for i := range metadata.MaxSchemaReferences {
		base := registerText(t, s, "base", fmt.Sprintf(`"base %d"`, i))
		refs = append(refs, metadata.SchemaReference{Name: fmt.Sprint("r", i), Subject: "base", Version: base.Version})
	}
	const n = 61
	for i := range n {
		var r []metadata.SchemaReference
		if i%10 == 0 {
			r = refs // 64 references: an operation each to delete
		}
		registerText(t, s, "many/versions", fmt.Sprintf(`{"n":%d}`, i), r...)
	}
	if _, err := s.DeleteSchemaVersion(ctx, "base", 1, false); !errors.Is(err, metadata.ErrSchemaReferenced) {
		t.Fatalf("deleting a referenced version: %v", err)
	}
	soft, err := s.DeleteSubject(ctx, "many/versions", false)
	if err != nil {
		t.Fatal(err)
	}
	hard, err := s.DeleteSubject(ctx, "many/versions", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(soft) != n || len(hard) != n || soft[0] != 1 || hard[n-1] != n {
		t.Errorf("deleted %d versions softly and %d permanently, want %d each", len(soft), len(hard), n)
	}
	v, err := s.SchemaView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if versions, err := v.Versions(ctx, "many/versions"); err != nil || len(versions) != 0 {
		t.Errorf("versions left: %v %v", versions, err)
	}
	if by, err := v.ReferencedBy(ctx, "base", 1); err != nil || len(by) != 0 {
		t.Errorf("base still referenced by %v (%v)", by, err)
	}
	if _, err := v.Schema(ctx, metadata.MaxSchemaReferences+1); !errors.Is(err, metadata.ErrSchemaNotFound) {
		t.Errorf("a schema of the deleted subject: %v, want not found", err)
	}
	if _, err := s.DeleteSchemaVersion(ctx, "base", 1, false); err != nil {
		t.Errorf("deleting base once nothing references it: %v", err)
	}
	if _, err := s.DeleteSubject(ctx, "many/versions", true); !errors.Is(err, metadata.ErrSubjectNotFound) {
		t.Errorf("deleting the deleted subject again: %v", err)
	}
}

func TestSchemaCompatibilityLevels(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	v, err := s.SchemaView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if level, err := v.EffectiveCompatibility(ctx, "x"); err != nil || level != metadata.DefaultCompatibility {
		t.Errorf("level of a fresh registry = %q %v", level, err)
	}
	if err := s.SetSchemaCompatibility(ctx, "", "FULL"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSchemaCompatibility(ctx, "x", "NONE"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSchemaCompatibility(ctx, "x", "SOMETIMES"); !errors.Is(err, metadata.ErrInvalidCompatibility) {
		t.Errorf("setting an unknown level: %v", err)
	}
	v, _ = s.SchemaView(ctx)
	if level, _ := v.EffectiveCompatibility(ctx, "x"); level != "NONE" {
		t.Errorf("x's level %q", level)
	}
	if level, _ := v.EffectiveCompatibility(ctx, "y"); level != "FULL" {
		t.Errorf("y's level %q, want the global FULL", level)
	}
	if prev, err := s.DeleteSchemaCompatibility(ctx, "x"); err != nil || prev != "NONE" {
		t.Errorf("deleting x's level: %q %v", prev, err)
	}
	if prev, err := s.DeleteSchemaCompatibility(ctx, ""); err != nil || prev != "FULL" {
		t.Errorf("deleting the global level: %q %v", prev, err)
	}
	v, _ = s.SchemaView(ctx)
	if level, _ := v.EffectiveCompatibility(ctx, "x"); level != metadata.DefaultCompatibility {
		t.Errorf("x's level after both went: %q", level)
	}
}
