package metadata

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// This file keeps the schema registry's state: schemas by cluster-wide
// ID, subjects with their versions, and compatibility levels, under
// schemas/ (FORMAT.md, "Schema registry"). It stores and enforces the
// registry's rules on versions, deletes and references; what a schema's
// text means (parsing, compatibility) is the caller's, through
// SchemaRegistration.Check.
//
// Every write compares the mod revision of one key, schemas/head, and
// rewrites it in the same transaction, so registry writes are serialized
// the way a single-leader registry serializes them: a registration that
// read the registry at one revision commits only if no other registry
// write came between, or re-reads and tries again. Registry writes are
// rare (clients cache IDs), so the one key costs nothing that matters.

// Schema types.
const (
	SchemaAvro     = "AVRO"
	SchemaProtobuf = "PROTOBUF"
	SchemaJSON     = "JSON"
)

// Compatibility levels, as Confluent's registry names them.
const (
	CompatNone               = "NONE"
	CompatBackward           = "BACKWARD"
	CompatBackwardTransitive = "BACKWARD_TRANSITIVE"
	CompatForward            = "FORWARD"
	CompatForwardTransitive  = "FORWARD_TRANSITIVE"
	CompatFull               = "FULL"
	CompatFullTransitive     = "FULL_TRANSITIVE"

	// DefaultCompatibility is the global level until one is set.
	DefaultCompatibility = CompatBackward
)

// CompatibilityLevels lists every level, NONE first.
var CompatibilityLevels = []string{CompatNone, CompatBackward, CompatBackwardTransitive, CompatForward, CompatForwardTransitive, CompatFull, CompatFullTransitive}

// Limits of what the registry stores.
const (
	// MaxSchemaBytes bounds a schema's text.
	MaxSchemaBytes = 1 << 20
	// maxSchemaValueBytes bounds the stored value of a schema (its text
	// escaped as a JSON string, with its references), so that a
	// registration stays under etcd's default request limit
	// (DefaultMaxRequestBytes) with room for the other keys it writes.
	maxSchemaValueBytes = DefaultMaxRequestBytes - 64<<10
	// MaxSchemaReferences bounds a schema's references: each is a key
	// written in the registration's transaction.
	MaxSchemaReferences = 64
	// MaxSubjectBytes bounds a subject name.
	MaxSubjectBytes = 1024
	// schemaDeleteBatch is the most versions one delete transaction
	// changes, and schemaDeleteMaxOps the most operations it takes,
	// under etcd's default of 128 (DefaultMaxTxnOps).
	schemaDeleteBatch  = 24
	schemaDeleteMaxOps = 96
)

// SchemaReference names a schema another schema uses: Name is what the
// referring schema calls it (an Avro type's full name, an imported file),
// Subject and Version where it is registered.
type SchemaReference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// StoredSchema is a registered schema.
type StoredSchema struct {
	ID         int
	Type       string
	Text       string
	References []SchemaReference
}

// SubjectVersion is one version of a subject and the schema it holds.
type SubjectVersion struct {
	Subject string
	Version int
	ID      int
	Deleted bool
}

// Values, each JSON with a version field (FORMAT.md).
type (
	schemaHeadValue struct {
		V      int `json:"v"`
		LastID int `json:"last_id"`
	}
	schemaValue struct {
		V          int               `json:"v"`
		Type       string            `json:"type"`
		Schema     string            `json:"schema"`
		References []SchemaReference `json:"refs,omitempty"`
	}
	schemaKeyValue struct {
		V  int `json:"v"`
		ID int `json:"id"`
	}
	subjectVersionValue struct {
		V       int  `json:"v"`
		ID      int  `json:"id"`
		Deleted bool `json:"deleted,omitempty"`
	}
	schemaConfigValue struct {
		V             int    `json:"v"`
		Compatibility string `json:"compatibility"`
	}
)

// Keys below the cluster root.
const (
	schemaHeadKey         = "schemas/head"
	schemaGlobalConfigKey = "schemas/config"
	prefixSchemaIDs       = "schemas/ids/"
	prefixSchemaKeys      = "schemas/keys/"
	prefixSchemaSubjects  = "schemas/subjects/"
	prefixSchemaUses      = "schemas/uses/"
	prefixSchemaRefs      = "schemas/refs/"
	prefixSubjectConfigs  = "schemas/subject-configs/"
)

func pad10(n int) string { return fmt.Sprintf("%010d", n) }

func escSubject(subject string) string { return url.PathEscape(subject) }

func (s *Store) schemaIDKey(id int) string { return s.key(prefixSchemaIDs, pad10(id)) }
func (s *Store) schemaHashKey(h string) string {
	return s.key(prefixSchemaKeys, h)
}
func (s *Store) subjectPrefix(subject string) string {
	return s.key(prefixSchemaSubjects, escSubject(subject), "/")
}
func (s *Store) subjectVersionKey(subject string, version int) string {
	return s.subjectPrefix(subject) + pad10(version)
}
func (s *Store) schemaUsePrefix(id int) string { return s.key(prefixSchemaUses, pad10(id), "/") }
func (s *Store) schemaUseKey(id int, subject string, version int) string {
	return s.schemaUsePrefix(id) + escSubject(subject) + "/" + pad10(version)
}
func (s *Store) schemaRefPrefix(subject string, version int) string {
	return s.key(prefixSchemaRefs, escSubject(subject), "/", pad10(version), "/")
}
func (s *Store) schemaRefKey(ref SchemaReference, id int) string {
	return s.schemaRefPrefix(ref.Subject, ref.Version) + pad10(id)
}

// schemaRefKeys are the refs/ keys of a schema's references, once each
// (two names may reference one version).
func (s *Store) schemaRefKeys(refs []SchemaReference, id int) []string {
	var keys []string
	for _, ref := range refs {
		keys = append(keys, s.schemaRefKey(ref, id))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func (s *Store) subjectConfigKey(subject string) string {
	if subject == "" {
		return s.key(schemaGlobalConfigKey)
	}
	return s.key(prefixSubjectConfigs, escSubject(subject))
}

// ValidateSubject checks a subject name: not empty, at most
// MaxSubjectBytes of UTF-8, no control characters.
func ValidateSubject(subject string) error {
	if subject == "" {
		return fmt.Errorf("%w: the subject is empty", ErrInvalidSubject)
	}
	if len(subject) > MaxSubjectBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidSubject, len(subject), MaxSubjectBytes)
	}
	if !utf8.ValidString(subject) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidSubject)
	}
	if strings.ContainsFunc(subject, unicode.IsControl) {
		return fmt.Errorf("%w: %q holds control characters", ErrInvalidSubject, subject)
	}
	return nil
}

// ValidCompatibility reports whether level is one of CompatibilityLevels.
func ValidCompatibility(level string) bool { return slices.Contains(CompatibilityLevels, level) }

// schemaIdentity is what decides that two registrations are of the same
// schema: the type, the canonical text the caller gives, and the
// references. Its hash keys schemas/keys/.
func schemaIdentity(typ, canonical string, refs []SchemaReference) string {
	h := sha256.New()
	b, _ := json.Marshal(struct {
		T string            `json:"t"`
		S string            `json:"s"`
		R []SchemaReference `json:"r"`
	}{typ, canonical, refs})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// encodeSchemaValue encodes a schema without HTML escaping, which would
// multiply the size of a JSON Schema full of '<'.
func encodeSchemaValue(v schemaValue) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("metadata: encoding schema: %v", err))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// SchemaView reads the registry as of one etcd revision, so that what a
// request reads (or a registration checks) is one consistent state.
type SchemaView struct {
	s   *Store
	rev int64
}

// SchemaView returns a view of the registry at the latest revision.
func (s *Store) SchemaView(ctx context.Context) (*SchemaView, error) {
	v, _, _, err := s.schemaHead(ctx)
	return v, err
}

// schemaHead reads the head key and returns a view at that read's
// revision, the head's mod revision (0: none yet) and its value.
func (s *Store) schemaHead(ctx context.Context) (*SchemaView, int64, schemaHeadValue, error) {
	key := s.key(schemaHeadKey)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, schemaHeadValue{}, fmt.Errorf("reading the schema registry: %w", err)
	}
	var head schemaHeadValue
	var modRev int64
	if len(resp.Kvs) > 0 {
		if err := decode(key, resp.Kvs[0].Value, &head); err != nil {
			return nil, 0, head, err
		}
		modRev = resp.Kvs[0].ModRevision
	}
	return &SchemaView{s: s, rev: resp.Header.Revision}, modRev, head, nil
}

// Revision is the etcd revision the view reads at.
func (v *SchemaView) Revision() int64 { return v.rev }

func (v *SchemaView) get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return v.s.cli.Get(ctx, key, append(opts, clientv3.WithRev(v.rev))...)
}

func (v *SchemaView) scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	return v.s.rangePagesAt(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), v.rev, func(key string, value []byte, _ int64) error {
		return fn(key, value)
	})
}

// Subjects returns the subjects, sorted, that have a version not
// deleted, or with deleted any version at all.
func (v *SchemaView) Subjects(ctx context.Context, deleted bool) ([]string, error) {
	prefix := v.s.key(prefixSchemaSubjects)
	var out []string
	err := v.scan(ctx, prefix, func(key string, value []byte) error {
		esc, _, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		if !ok {
			return fmt.Errorf("%w: subject key %s", ErrCorruptValue, key)
		}
		subject, err := url.PathUnescape(esc)
		if err != nil {
			return fmt.Errorf("%w: subject key %s", ErrCorruptValue, key)
		}
		if len(out) > 0 && out[len(out)-1] == subject {
			return nil
		}
		var sv subjectVersionValue
		if err := decode(key, value, &sv); err != nil {
			return err
		}
		if deleted || !sv.Deleted {
			out = append(out, subject)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing subjects: %w", err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Versions returns every version of a subject, deleted ones included,
// in ascending order; none (and no error) when it has none.
func (v *SchemaView) Versions(ctx context.Context, subject string) ([]SubjectVersion, error) {
	prefix := v.s.subjectPrefix(subject)
	var out []SubjectVersion
	err := v.scan(ctx, prefix, func(key string, value []byte) error {
		n, err := strconv.Atoi(strings.TrimPrefix(key, prefix))
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: subject version key %s", ErrCorruptValue, key)
		}
		var sv subjectVersionValue
		if err := decode(key, value, &sv); err != nil {
			return err
		}
		out = append(out, SubjectVersion{Subject: subject, Version: n, ID: sv.ID, Deleted: sv.Deleted})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the versions of subject %s: %w", subject, err)
	}
	return out, nil
}

// Version returns one version of a subject, deleted or not, with
// ErrSchemaVersionNotFound when the subject has no such version.
func (v *SchemaView) Version(ctx context.Context, subject string, version int) (SubjectVersion, error) {
	key := v.s.subjectVersionKey(subject, version)
	resp, err := v.get(ctx, key)
	if err != nil {
		return SubjectVersion{}, fmt.Errorf("reading version %d of subject %s: %w", version, subject, err)
	}
	if len(resp.Kvs) == 0 {
		return SubjectVersion{}, fmt.Errorf("%w: version %d of subject %s", ErrSchemaVersionNotFound, version, subject)
	}
	var sv subjectVersionValue
	if err := decode(key, resp.Kvs[0].Value, &sv); err != nil {
		return SubjectVersion{}, err
	}
	return SubjectVersion{Subject: subject, Version: version, ID: sv.ID, Deleted: sv.Deleted}, nil
}

// Schema returns the schema of an ID, with ErrSchemaNotFound when no
// version of any subject, deleted or not, holds it.
func (v *SchemaView) Schema(ctx context.Context, id int) (StoredSchema, error) {
	key := v.s.schemaIDKey(id)
	resp, err := v.get(ctx, key)
	if err != nil {
		return StoredSchema{}, fmt.Errorf("reading schema %d: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return StoredSchema{}, fmt.Errorf("%w: ID %d", ErrSchemaNotFound, id)
	}
	var sv schemaValue
	if err := decode(key, resp.Kvs[0].Value, &sv); err != nil {
		return StoredSchema{}, err
	}
	return StoredSchema{ID: id, Type: sv.Type, Text: sv.Schema, References: sv.References}, nil
}

// SchemaID returns the ID of a schema registered before (possibly since
// deleted everywhere), by its type, canonical text and references.
func (v *SchemaView) SchemaID(ctx context.Context, typ, canonical string, refs []SchemaReference) (int, bool, error) {
	key := v.s.schemaHashKey(schemaIdentity(typ, canonical, refs))
	resp, err := v.get(ctx, key)
	if err != nil {
		return 0, false, fmt.Errorf("looking a schema up: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, false, nil
	}
	var kv schemaKeyValue
	if err := decode(key, resp.Kvs[0].Value, &kv); err != nil {
		return 0, false, err
	}
	return kv.ID, true, nil
}

// Usages returns the subject versions, deleted ones included, that hold
// the schema of an ID, by subject then version.
func (v *SchemaView) Usages(ctx context.Context, id int) ([]SubjectVersion, error) {
	prefix := v.s.schemaUsePrefix(id)
	var out []SubjectVersion
	err := v.scan(ctx, prefix, func(key string, _ []byte) error {
		esc, num, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		subject, err := url.PathUnescape(esc)
		n, nerr := strconv.Atoi(num)
		if !ok || err != nil || nerr != nil {
			return fmt.Errorf("%w: schema use key %s", ErrCorruptValue, key)
		}
		out = append(out, SubjectVersion{Subject: subject, Version: n, ID: id})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the uses of schema %d: %w", id, err)
	}
	for i := range out {
		sv, err := v.Version(ctx, out[i].Subject, out[i].Version)
		if err != nil {
			return nil, err
		}
		out[i].Deleted = sv.Deleted
	}
	slices.SortFunc(out, func(a, b SubjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}

// ReferencedBy returns the IDs of the schemas that reference a subject
// version, ascending.
func (v *SchemaView) ReferencedBy(ctx context.Context, subject string, version int) ([]int, error) {
	prefix := v.s.schemaRefPrefix(subject, version)
	var out []int
	err := v.scan(ctx, prefix, func(key string, _ []byte) error {
		id, err := strconv.Atoi(strings.TrimPrefix(key, prefix))
		if err != nil {
			return fmt.Errorf("%w: schema reference key %s", ErrCorruptValue, key)
		}
		out = append(out, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading what references %s version %d: %w", subject, version, err)
	}
	return out, nil
}

// Compatibility returns the level of a subject ("" for the global one)
// and whether it was set; an unset global level is DefaultCompatibility,
// an unset subject level is "".
func (v *SchemaView) Compatibility(ctx context.Context, subject string) (string, bool, error) {
	key := v.s.subjectConfigKey(subject)
	resp, err := v.get(ctx, key)
	if err != nil {
		return "", false, fmt.Errorf("reading the compatibility level: %w", err)
	}
	if len(resp.Kvs) == 0 {
		if subject == "" {
			return DefaultCompatibility, false, nil
		}
		return "", false, nil
	}
	var cv schemaConfigValue
	if err := decode(key, resp.Kvs[0].Value, &cv); err != nil {
		return "", false, err
	}
	return cv.Compatibility, true, nil
}

// EffectiveCompatibility is the subject's level, or the global one when
// it has none.
func (v *SchemaView) EffectiveCompatibility(ctx context.Context, subject string) (string, error) {
	level, set, err := v.Compatibility(ctx, subject)
	if err != nil || set {
		return level, err
	}
	level, _, err = v.Compatibility(ctx, "")
	return level, err
}

// LiveVersions is versions without the deleted ones.
func LiveVersions(versions []SubjectVersion) []SubjectVersion {
	var out []SubjectVersion
	for _, sv := range versions {
		if !sv.Deleted {
			out = append(out, sv)
		}
	}
	return out
}

// SchemaRegistration is a schema to register under a subject.
type SchemaRegistration struct {
	Subject string
	// Schema is the schema's type, text and references (ID is
	// ignored). A reference's version -1 is the subject's latest.
	Schema StoredSchema
	// Canonical is the form of the text that two registrations of the
	// same schema share (for Avro, its JSON with whitespace and key order
	// normalized); with the type and references it decides whether the
	// schema has an ID already.
	Canonical string
	// ID and Version, when positive, are what the caller expects the
	// schema to get; anything else is refused with
	// ErrSchemaIDNotPermitted.
	ID, Version int
	// Check is called before a new version is written, with a view at
	// the revision the write compares against, the subject's versions
	// (deleted ones included) and the schema with its references
	// resolved to versions. An error refuses the registration and is
	// returned as it is. It is called again on each retry.
	Check func(ctx context.Context, v *SchemaView, versions []SubjectVersion, schema StoredSchema) error
}

// Registered is what a registration gave the schema.
type Registered struct {
	ID, Version int
	// New is false when the subject held the schema already.
	New bool
}

// RegisterSchema registers a schema under a subject, in one etcd
// transaction: the schema keeps the ID it has anywhere in the registry
// or gets the next one, and becomes the subject's next version, unless a
// version not deleted holds it already (then nothing is written and that
// version is returned).
func (s *Store) RegisterSchema(ctx context.Context, reg SchemaRegistration) (Registered, error) {
	if err := ValidateSubject(reg.Subject); err != nil {
		return Registered{}, err
	}
	sch := reg.Schema
	switch sch.Type {
	case SchemaAvro, SchemaProtobuf, SchemaJSON:
	default:
		return Registered{}, fmt.Errorf("%w: unknown schema type %q", ErrInvalidSchema, sch.Type)
	}
	if len(sch.Text) > MaxSchemaBytes {
		return Registered{}, fmt.Errorf("%w: %d bytes, more than %d", ErrSchemaTooLarge, len(sch.Text), MaxSchemaBytes)
	}
	if len(sch.References) > MaxSchemaReferences {
		return Registered{}, fmt.Errorf("%w: %d references, more than %d", ErrInvalidSchema, len(sch.References), MaxSchemaReferences)
	}
	var out Registered
	err := s.schemaWrite(ctx, func(v *SchemaView, head *schemaHeadValue) ([]clientv3.Op, error) {
		versions, err := v.Versions(ctx, reg.Subject)
		if err != nil {
			return nil, err
		}
		resolved, err := v.resolveReferences(ctx, sch)
		if err != nil {
			return nil, err
		}
		id, known, err := v.SchemaID(ctx, resolved.Type, reg.Canonical, resolved.References)
		if err != nil {
			return nil, err
		}
		if known {
			for _, sv := range versions {
				if !sv.Deleted && sv.ID == id {
					if (reg.ID > 0 && reg.ID != id) || (reg.Version > 0 && reg.Version != sv.Version) {
						return nil, fmt.Errorf("%w: subject %s holds this schema as ID %d, version %d", ErrSchemaIDNotPermitted, reg.Subject, id, sv.Version)
					}
					out = Registered{ID: id, Version: sv.Version}
					return nil, nil
				}
			}
		}
		version := 1
		if len(versions) > 0 {
			version = versions[len(versions)-1].Version + 1
		}
		newID := head.LastID + 1
		if known {
			newID = id
		}
		if (reg.ID > 0 && reg.ID != newID) || (reg.Version > 0 && reg.Version != version) {
			return nil, fmt.Errorf("%w: the schema would be ID %d, version %d of subject %s", ErrSchemaIDNotPermitted, newID, version, reg.Subject)
		}
		if reg.Check != nil {
			if err := reg.Check(ctx, v, versions, resolved); err != nil {
				return nil, err
			}
		}
		resolved.ID = newID
		ops := []clientv3.Op{
			clientv3.OpPut(s.subjectVersionKey(reg.Subject, version), encode(subjectVersionValue{V: 1, ID: newID})),
			clientv3.OpPut(s.schemaUseKey(newID, reg.Subject, version), ""),
		}
		stored := false
		if known {
			if _, err := v.Schema(ctx, id); err == nil {
				stored = true
			} else if !errors.Is(err, ErrSchemaNotFound) {
				return nil, err
			}
		} else {
			head.LastID = newID
			ops = append(ops, clientv3.OpPut(s.schemaHashKey(schemaIdentity(resolved.Type, reg.Canonical, resolved.References)), encode(schemaKeyValue{V: 1, ID: newID})))
		}
		if !stored {
			value := encodeSchemaValue(schemaValue{V: 1, Type: resolved.Type, Schema: resolved.Text, References: resolved.References})
			if len(value) > maxSchemaValueBytes {
				return nil, fmt.Errorf("%w: stored with its text escaped it takes %d bytes, more than the %d one etcd request carries", ErrSchemaTooLarge, len(value), maxSchemaValueBytes)
			}
			ops = append(ops, clientv3.OpPut(s.schemaIDKey(newID), value))
			for _, key := range s.schemaRefKeys(resolved.References, newID) {
				ops = append(ops, clientv3.OpPut(key, ""))
			}
		}
		out = Registered{ID: newID, Version: version, New: true}
		return ops, nil
	})
	return out, err
}

// ResolveReferences returns the schema with each reference's version -1
// replaced by its subject's latest version, failing with ErrInvalidSchema
// when a referenced version does not exist or is deleted.
func (v *SchemaView) ResolveReferences(ctx context.Context, sch StoredSchema) (StoredSchema, error) {
	return v.resolveReferences(ctx, sch)
}

func (v *SchemaView) resolveReferences(ctx context.Context, sch StoredSchema) (StoredSchema, error) {
	if len(sch.References) == 0 {
		sch.References = nil
		return sch, nil
	}
	refs := make([]SchemaReference, len(sch.References))
	for i, ref := range sch.References {
		if ref.Name == "" {
			return sch, fmt.Errorf("%w: reference %d has no name", ErrInvalidSchema, i)
		}
		if err := ValidateSubject(ref.Subject); err != nil {
			return sch, fmt.Errorf("%w: reference %s: %v", ErrInvalidSchema, ref.Name, err)
		}
		switch {
		case ref.Version == -1:
			versions, err := v.Versions(ctx, ref.Subject)
			if err != nil {
				return sch, err
			}
			live := LiveVersions(versions)
			if len(live) == 0 {
				return sch, fmt.Errorf("%w: reference %s: subject %s has no versions", ErrInvalidSchema, ref.Name, ref.Subject)
			}
			ref.Version = live[len(live)-1].Version
		case ref.Version <= 0:
			return sch, fmt.Errorf("%w: reference %s: version %d", ErrInvalidSchema, ref.Name, ref.Version)
		default:
			sv, err := v.Version(ctx, ref.Subject, ref.Version)
			if errors.Is(err, ErrSchemaVersionNotFound) || err == nil && sv.Deleted {
				return sch, fmt.Errorf("%w: reference %s: subject %s has no version %d", ErrInvalidSchema, ref.Name, ref.Subject, ref.Version)
			}
			if err != nil {
				return sch, err
			}
		}
		refs[i] = ref
	}
	sch.References = refs
	return sch, nil
}

// resolveVersion turns a version number, or -1 for the latest, into an
// existing version of a subject. latest picks among the versions not
// deleted unless withDeleted.
func resolveVersion(subject string, versions []SubjectVersion, version int, withDeleted bool) (SubjectVersion, error) {
	if len(versions) == 0 {
		return SubjectVersion{}, fmt.Errorf("%w: %s", ErrSubjectNotFound, subject)
	}
	if version == -1 {
		for i := len(versions) - 1; i >= 0; i-- {
			if withDeleted || !versions[i].Deleted {
				return versions[i], nil
			}
		}
		return SubjectVersion{}, fmt.Errorf("%w: %s", ErrSubjectNotFound, subject)
	}
	for _, sv := range versions {
		if sv.Version == version {
			return sv, nil
		}
	}
	return SubjectVersion{}, fmt.Errorf("%w: version %d of subject %s", ErrSchemaVersionNotFound, version, subject)
}

// DeleteSchemaVersion deletes one version of a subject (-1: the latest)
// and returns its number. A soft delete hides it from reads that do not
// ask for deleted versions; a permanent one, allowed only after a soft
// one, removes it, and with it the schema of its ID once no other
// version holds that. A version other schemas reference is not deleted
// (ErrSchemaReferenced).
func (s *Store) DeleteSchemaVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	var deleted int
	err := s.schemaWrite(ctx, func(v *SchemaView, _ *schemaHeadValue) ([]clientv3.Op, error) {
		versions, err := v.Versions(ctx, subject)
		if err != nil {
			return nil, err
		}
		sv, err := resolveVersion(subject, versions, version, permanent)
		if err != nil {
			return nil, err
		}
		switch {
		case !permanent && sv.Deleted:
			return nil, fmt.Errorf("%w: version %d of subject %s", ErrSchemaVersionSoftDeleted, sv.Version, subject)
		case permanent && !sv.Deleted:
			return nil, fmt.Errorf("%w: version %d of subject %s", ErrSchemaVersionNotSoftDeleted, sv.Version, subject)
		}
		if err := v.checkUnreferenced(ctx, sv); err != nil {
			return nil, err
		}
		deleted = sv.Version
		if !permanent {
			return []clientv3.Op{clientv3.OpPut(s.subjectVersionKey(subject, sv.Version), encode(subjectVersionValue{V: 1, ID: sv.ID, Deleted: true}))}, nil
		}
		return v.permanentDeleteOps(ctx, []SubjectVersion{sv})
	})
	return deleted, err
}

func (v *SchemaView) checkUnreferenced(ctx context.Context, sv SubjectVersion) error {
	by, err := v.ReferencedBy(ctx, sv.Subject, sv.Version)
	if err != nil {
		return err
	}
	if len(by) > 0 {
		return fmt.Errorf("%w: version %d of subject %s, by schemas %v", ErrSchemaReferenced, sv.Version, sv.Subject, by)
	}
	return nil
}

// permanentDeleteOps removes versions of one subject, and the schema of
// each ID no version is left to hold.
func (v *SchemaView) permanentDeleteOps(ctx context.Context, svs []SubjectVersion) ([]clientv3.Op, error) {
	s := v.s
	var ops []clientv3.Op
	gone := map[int]int{} // id -> uses removed here
	for _, sv := range svs {
		ops = append(ops, clientv3.OpDelete(s.subjectVersionKey(sv.Subject, sv.Version)), clientv3.OpDelete(s.schemaUseKey(sv.ID, sv.Subject, sv.Version)))
		gone[sv.ID]++
	}
	ids := make([]int, 0, len(gone))
	for id := range gone {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		resp, err := v.get(ctx, s.schemaUsePrefix(id), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return nil, fmt.Errorf("counting the uses of schema %d: %w", id, err)
		}
		if resp.Count > int64(gone[id]) {
			continue
		}
		sch, err := v.Schema(ctx, id)
		if errors.Is(err, ErrSchemaNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The schemas/keys/ entry stays, so the same schema registered
		// again gets its old ID back.
		ops = append(ops, clientv3.OpDelete(s.schemaIDKey(id)))
		for _, key := range s.schemaRefKeys(sch.References, id) {
			ops = append(ops, clientv3.OpDelete(key))
		}
	}
	return ops, nil
}

// DeleteSubject deletes every version of a subject and returns their
// numbers. A soft delete marks the versions not deleted yet; a permanent
// one, allowed only once every version is soft deleted, removes them
// all and the subject's compatibility level. Subjects with many versions
// are deleted in several transactions, each consistent; a permanent
// delete cut short leaves soft-deleted versions that a retry removes.
func (s *Store) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	var all []int
	for {
		var batch []int
		done := false
		err := s.schemaWrite(ctx, func(v *SchemaView, _ *schemaHeadValue) ([]clientv3.Op, error) {
			batch, done = nil, false
			versions, err := v.Versions(ctx, subject)
			if err != nil {
				return nil, err
			}
			live := LiveVersions(versions)
			if len(versions) == 0 {
				if all != nil {
					done = true
					return nil, nil
				}
				return nil, fmt.Errorf("%w: %s", ErrSubjectNotFound, subject)
			}
			if !permanent && len(live) == 0 {
				if all != nil {
					done = true
					return nil, nil
				}
				return nil, fmt.Errorf("%w: %s", ErrSubjectSoftDeleted, subject)
			}
			if permanent && len(live) > 0 {
				return nil, fmt.Errorf("%w: %s", ErrSubjectNotSoftDeleted, subject)
			}
			todo := versions
			if !permanent {
				todo = live
			}
			for _, sv := range todo {
				if err := v.checkUnreferenced(ctx, sv); err != nil {
					return nil, err
				}
			}
			n := min(len(todo), schemaDeleteBatch)
			var ops []clientv3.Op
			for {
				ops = nil
				if !permanent {
					for _, sv := range todo[:n] {
						ops = append(ops, clientv3.OpPut(s.subjectVersionKey(subject, sv.Version), encode(subjectVersionValue{V: 1, ID: sv.ID, Deleted: true})))
					}
					break
				}
				if ops, err = v.permanentDeleteOps(ctx, todo[:n]); err != nil {
					return nil, err
				}
				// Schemas with many references take an operation each.
				if len(ops) <= schemaDeleteMaxOps || n == 1 {
					break
				}
				n /= 2
			}
			done = n == len(todo)
			for _, sv := range todo[:n] {
				batch = append(batch, sv.Version)
			}
			if done && permanent {
				ops = append(ops, clientv3.OpDelete(s.subjectConfigKey(subject)))
			}
			return ops, nil
		})
		if err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if all == nil {
			all = []int{}
		}
		if done {
			slices.Sort(all)
			return all, nil
		}
	}
}

// SetSchemaCompatibility sets the level of a subject, or the global one
// for subject "".
func (s *Store) SetSchemaCompatibility(ctx context.Context, subject, level string) error {
	if !ValidCompatibility(level) {
		return fmt.Errorf("%w: %q", ErrInvalidCompatibility, level)
	}
	if subject != "" {
		if err := ValidateSubject(subject); err != nil {
			return err
		}
	}
	return s.schemaWrite(ctx, func(*SchemaView, *schemaHeadValue) ([]clientv3.Op, error) {
		return []clientv3.Op{clientv3.OpPut(s.subjectConfigKey(subject), encode(schemaConfigValue{V: 1, Compatibility: level}))}, nil
	})
}

// DeleteSchemaCompatibility removes the level of a subject (subject "":
// the global one goes back to DefaultCompatibility) and returns the
// level it had: ErrSubjectNotFound when the subject has neither a level
// nor versions; the global level when it had no level of its own.
func (s *Store) DeleteSchemaCompatibility(ctx context.Context, subject string) (string, error) {
	var prev string
	err := s.schemaWrite(ctx, func(v *SchemaView, _ *schemaHeadValue) ([]clientv3.Op, error) {
		level, set, err := v.Compatibility(ctx, subject)
		if err != nil {
			return nil, err
		}
		if !set && subject != "" {
			versions, err := v.Versions(ctx, subject)
			if err != nil {
				return nil, err
			}
			if len(versions) == 0 {
				return nil, fmt.Errorf("%w: %s", ErrSubjectNotFound, subject)
			}
			level, _, err = v.Compatibility(ctx, "")
			if err != nil {
				return nil, err
			}
		}
		prev = level
		if !set {
			return nil, nil
		}
		return []clientv3.Op{clientv3.OpDelete(s.subjectConfigKey(subject))}, nil
	})
	return prev, err
}

// schemaWrite runs one registry write: plan reads the registry at one
// revision and returns the operations to apply (none: nothing to write),
// which commit with the head rewritten only if no other registry write
// came after that revision; otherwise plan runs again, until ctx ends.
// plan may change the head (a new ID).
func (s *Store) schemaWrite(ctx context.Context, plan func(v *SchemaView, head *schemaHeadValue) ([]clientv3.Op, error)) error {
	headKey := s.key(schemaHeadKey)
	for attempt := 0; ; attempt++ {
		v, modRev, head, err := s.schemaHead(ctx)
		if err != nil {
			return err
		}
		head.V = 1
		ops, err := plan(v, &head)
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // the view's revision was compacted away: read again
		}
		if err != nil || len(ops) == 0 {
			return err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(headKey), "=", modRev)
		ops = append(ops, clientv3.OpPut(headKey, encode(head)))
		resp, err := s.cli.Txn(ctx).If(cmp).Then(ops...).Commit()
		if err != nil {
			return fmt.Errorf("writing the schema registry: %w", err)
		}
		if resp.Succeeded {
			return nil
		}
		// Another registry write came between: back off a little (more
		// as conflicts repeat) so that many writers all make progress.
		d := time.Duration(rand.IntN(1+min(attempt, 20))) * time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("writing the schema registry: %w", ctx.Err())
		case <-time.After(d):
		}
	}
}
