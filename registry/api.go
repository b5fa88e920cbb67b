package registry

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/floe-io/floe/metadata"
)

// routes registers the API. Paths are Confluent's; {subject} is a path
// segment, so a subject holding '/' is sent escaped (%2F), as clients do.
func (h *Handler) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { reply(w, struct{}{}) })
	mux.HandleFunc("GET /subjects", h.listSubjects)
	mux.HandleFunc("GET /subjects/{subject}/versions", h.listVersions)
	mux.HandleFunc("POST /subjects/{subject}/versions", h.register)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", h.getVersion)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", h.getVersionSchema)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", h.referencedBy)
	mux.HandleFunc("DELETE /subjects/{subject}/versions/{version}", h.deleteVersion)
	mux.HandleFunc("POST /subjects/{subject}", h.lookup)
	mux.HandleFunc("DELETE /subjects/{subject}", h.deleteSubject)
	mux.HandleFunc("GET /schemas/types", func(w http.ResponseWriter, r *http.Request) {
		reply(w, []string{metadata.SchemaJSON, metadata.SchemaProtobuf, metadata.SchemaAvro})
	})
	mux.HandleFunc("GET /schemas/ids/{id}", h.getSchema)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", h.getSchemaText)
	mux.HandleFunc("GET /schemas/ids/{id}/versions", h.getSchemaVersions)
	mux.HandleFunc("GET /schemas/ids/{id}/subjects", h.getSchemaSubjects)
	mux.HandleFunc("GET /config", h.getConfig)
	mux.HandleFunc("PUT /config", h.setConfig)
	mux.HandleFunc("DELETE /config", h.deleteConfig)
	mux.HandleFunc("GET /config/{subject}", h.getConfig)
	mux.HandleFunc("PUT /config/{subject}", h.setConfig)
	mux.HandleFunc("DELETE /config/{subject}", h.deleteConfig)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", h.compatibility)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions", h.compatibility)
	mux.HandleFunc("GET /mode", h.getMode)
	mux.HandleFunc("GET /mode/{subject}", h.getMode)
	mux.HandleFunc("PUT /mode", h.setMode)
	mux.HandleFunc("PUT /mode/{subject}", h.setMode)
}

// Request and response bodies, in Confluent's JSON shapes.
type (
	schemaRequest struct {
		Schema     string                     `json:"schema"`
		SchemaType string                     `json:"schemaType"`
		References []metadata.SchemaReference `json:"references"`
		ID         int                        `json:"id"`
		Version    int                        `json:"version"`
		// metadata and ruleSet (data contracts) are accepted and not
		// stored.
	}
	subjectSchema struct {
		Subject    string                     `json:"subject"`
		Version    int                        `json:"version"`
		ID         int                        `json:"id"`
		SchemaType string                     `json:"schemaType,omitempty"`
		References []metadata.SchemaReference `json:"references,omitempty"`
		Schema     string                     `json:"schema"`
	}
	schemaByID struct {
		SchemaType string                     `json:"schemaType,omitempty"`
		References []metadata.SchemaReference `json:"references,omitempty"`
		Schema     string                     `json:"schema"`
	}
	subjectVersion struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
	}
	configRequest struct {
		Compatibility string `json:"compatibility"`
	}
	configResponse struct {
		CompatibilityLevel string `json:"compatibilityLevel"`
	}
	compatibilityResponse struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages,omitempty"`
	}
)

// responseType is the schemaType a response carries: none for AVRO, as
// Confluent's registry answers.
func responseType(t string) string {
	if t == metadata.SchemaAvro {
		return ""
	}
	return t
}

func ctxFor(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), requestTimeout)
}

func flag(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

// subjectOf returns the path's subject, checked.
func subjectOf(r *http.Request) (string, error) {
	s := r.PathValue("subject")
	if err := metadata.ValidateSubject(s); err != nil {
		return s, err
	}
	return s, nil
}

// parseVersion reads a version in a path: "latest" or -1 (returned as
// -1), or 1 to 2^31-1.
func parseVersion(s string) (int, error) {
	if strings.EqualFold(s, "latest") {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 || n < -1 || n > math.MaxInt32 {
		return 0, newAPIError(codeInvalidVersion, invalidVersionMessageFmt, s)
	}
	return int(n), nil
}

// parseID reads a schema ID in a path; one that cannot be an ID is not
// found.
func parseID(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return 0, newAPIError(codeSchemaNotFound, "Schema %s not found", s)
	}
	return int(n), nil
}

// readSchema reads a schema request body and prepares it.
func readSchema(r *http.Request) (schemaRequest, prepared, error) {
	var req schemaRequest
	if err := readBody(r, maxSchemaBody, &req, newAPIError(codeSchemaTooLarge, "Schema too large: the request is over %d bytes", maxSchemaBody)); err != nil {
		return req, prepared{}, err
	}
	typ, err := schemaType(req.SchemaType)
	if err != nil {
		return req, prepared{}, err
	}
	if len(req.References) > metadata.MaxSchemaReferences {
		return req, prepared{}, newAPIError(codeInvalidSchema, "Invalid schema: %d references, more than %d", len(req.References), metadata.MaxSchemaReferences)
	}
	p, err := prepare(typ, req.Schema, req.References)
	return req, p, err
}

// GET /subjects
func (h *Handler) listSubjects(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, where{})
		return
	}
	deletedOnly := flag(r, "deletedOnly")
	subjects, err := v.Subjects(ctx, deletedOnly || flag(r, "deleted"))
	if err != nil {
		h.fail(w, r, err, where{})
		return
	}
	if deletedOnly {
		live, err := v.Subjects(ctx, false)
		if err != nil {
			h.fail(w, r, err, where{})
			return
		}
		subjects = without(subjects, live)
	}
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for _, s := range subjects {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	reply(w, out)
}

func without(all, drop []string) []string {
	gone := map[string]bool{}
	for _, s := range drop {
		gone[s] = true
	}
	var out []string
	for _, s := range all {
		if !gone[s] {
			out = append(out, s)
		}
	}
	return out
}

// GET /subjects/{subject}/versions
func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	versions, err := v.Versions(ctx, subject)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	deleted, deletedOnly := flag(r, "deleted"), flag(r, "deletedOnly")
	out := []int{}
	for _, sv := range versions {
		if deletedOnly && sv.Deleted || !deletedOnly && (deleted || !sv.Deleted) {
			out = append(out, sv.Version)
		}
	}
	if len(out) == 0 {
		h.fail(w, r, metadata.ErrSubjectNotFound, at)
		return
	}
	reply(w, out)
}

// version finds the version a path names: with deleted, soft-deleted
// versions count (and "latest" may be one).
func (h *Handler) version(ctx context.Context, v *metadata.SchemaView, subject string, version int, deleted bool) (metadata.SubjectVersion, error) {
	versions, err := v.Versions(ctx, subject)
	if err != nil {
		return metadata.SubjectVersion{}, err
	}
	var live []metadata.SubjectVersion
	for _, sv := range versions {
		if deleted || !sv.Deleted {
			live = append(live, sv)
		}
	}
	if len(live) == 0 {
		return metadata.SubjectVersion{}, metadata.ErrSubjectNotFound
	}
	if version == -1 {
		return live[len(live)-1], nil
	}
	for _, sv := range live {
		if sv.Version == version {
			return sv, nil
		}
	}
	return metadata.SubjectVersion{}, metadata.ErrSchemaVersionNotFound
}

// subjectVersionAt reads the version a request's path names and its
// schema.
func (h *Handler) subjectVersionAt(w http.ResponseWriter, r *http.Request) (subjectSchema, bool) {
	subject, err := subjectOf(r)
	at := where{subject: subject, version: r.PathValue("version")}
	if err != nil {
		h.fail(w, r, err, at)
		return subjectSchema{}, false
	}
	version, err := parseVersion(at.version)
	if err != nil {
		h.fail(w, r, err, at)
		return subjectSchema{}, false
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, at)
		return subjectSchema{}, false
	}
	sv, err := h.version(ctx, v, subject, version, flag(r, "deleted"))
	if err != nil {
		h.fail(w, r, err, at)
		return subjectSchema{}, false
	}
	sch, err := v.Schema(ctx, sv.ID)
	if err != nil {
		h.fail(w, r, err, where{subject: subject, id: sv.ID})
		return subjectSchema{}, false
	}
	return subjectSchema{Subject: subject, Version: sv.Version, ID: sv.ID, SchemaType: responseType(sch.Type), References: sch.References, Schema: sch.Text}, true
}

// GET /subjects/{subject}/versions/{version}
func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request) {
	if ss, ok := h.subjectVersionAt(w, r); ok {
		reply(w, ss)
	}
}

// GET /subjects/{subject}/versions/{version}/schema
func (h *Handler) getVersionSchema(w http.ResponseWriter, r *http.Request) {
	if ss, ok := h.subjectVersionAt(w, r); ok {
		writeRaw(w, ss.Schema)
	}
}

// writeRaw answers with a schema's own text.
func writeRaw(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(text))
}

// GET /subjects/{subject}/versions/{version}/referencedby
func (h *Handler) referencedBy(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.subjectVersionAt(w, r)
	if !ok {
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, where{subject: ss.Subject})
		return
	}
	ids, err := v.ReferencedBy(ctx, ss.Subject, ss.Version)
	if err != nil {
		h.fail(w, r, err, where{subject: ss.Subject})
		return
	}
	if ids == nil {
		ids = []int{}
	}
	reply(w, ids)
}

// POST /subjects/{subject}/versions
func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	req, p, err := readSchema(r)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	id, version := req.ID, req.Version
	if id < 0 {
		id = 0
	}
	if version < 0 {
		version = 0
	}
	reg, err := h.store.RegisterSchema(ctx, metadata.SchemaRegistration{
		Subject:   subject,
		Schema:    p.schema,
		Canonical: p.canonical,
		ID:        id,
		Version:   version,
		Check: func(ctx context.Context, v *metadata.SchemaView, versions []metadata.SubjectVersion, sch metadata.StoredSchema) error {
			ps := newParser(v)
			parsed, err := ps.validate(ctx, sch)
			if err != nil {
				return err
			}
			level, err := v.EffectiveCompatibility(ctx, subject)
			if err != nil {
				return err
			}
			msgs, err := ps.incompatibilities(ctx, level, sch, parsed, checkAgainst(level, versions))
			if err != nil {
				return err
			}
			if len(msgs) > 0 {
				return newAPIError(codeIncompatibleSchema, incompatibleSchemaMessagePrefixFmt+"[%s]", subject, strings.Join(msgs, ", "))
			}
			return nil
		},
	})
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	reply(w, struct {
		ID int `json:"id"`
	}{reg.ID})
}

// POST /subjects/{subject}: is this schema registered under the subject?
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	_, p, err := readSchema(r)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	deleted := flag(r, "deleted")
	versions, err := v.Versions(ctx, subject)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	if !deleted {
		versions = metadata.LiveVersions(versions)
	}
	if len(versions) == 0 {
		h.fail(w, r, metadata.ErrSubjectNotFound, at)
		return
	}
	sch, err := v.ResolveReferences(ctx, p.schema)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	id, ok, err := v.SchemaID(ctx, sch.Type, p.canonical, sch.References)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	if ok {
		for i := len(versions) - 1; i >= 0; i-- {
			if sv := versions[i]; sv.ID == id {
				stored, err := v.Schema(ctx, id)
				if err != nil {
					h.fail(w, r, err, where{subject: subject, id: id})
					return
				}
				reply(w, subjectSchema{Subject: subject, Version: sv.Version, ID: id, SchemaType: responseType(stored.Type), References: stored.References, Schema: stored.Text})
				return
			}
		}
	}
	// Not there: say whether it is invalid, as Confluent's registry does.
	if _, err := newParser(v).validate(ctx, sch); err != nil {
		h.fail(w, r, err, at)
		return
	}
	h.fail(w, r, metadata.ErrSchemaNotFound, at)
}

// DELETE /subjects/{subject}/versions/{version}
func (h *Handler) deleteVersion(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject, version: r.PathValue("version")}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	version, err := parseVersion(at.version)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	n, err := h.store.DeleteSchemaVersion(ctx, subject, version, flag(r, "permanent"))
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	reply(w, n)
}

// DELETE /subjects/{subject}
func (h *Handler) deleteSubject(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	versions, err := h.store.DeleteSubject(ctx, subject, flag(r, "permanent"))
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	reply(w, versions)
}

// schemaAt reads the schema a request's path names by ID.
func (h *Handler) schemaAt(w http.ResponseWriter, r *http.Request) (*metadata.SchemaView, metadata.StoredSchema, bool) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err, where{})
		return nil, metadata.StoredSchema{}, false
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, where{id: id})
		return nil, metadata.StoredSchema{}, false
	}
	sch, err := v.Schema(ctx, id)
	if err != nil {
		h.fail(w, r, err, where{id: id})
		return nil, metadata.StoredSchema{}, false
	}
	return v, sch, true
}

// GET /schemas/ids/{id}. The subject parameter names a context in
// Confluent's registry; floe has the one default context, so every ID is
// found whatever subject is given.
func (h *Handler) getSchema(w http.ResponseWriter, r *http.Request) {
	if _, sch, ok := h.schemaAt(w, r); ok {
		reply(w, schemaByID{SchemaType: responseType(sch.Type), References: sch.References, Schema: sch.Text})
	}
}

// GET /schemas/ids/{id}/schema
func (h *Handler) getSchemaText(w http.ResponseWriter, r *http.Request) {
	if _, sch, ok := h.schemaAt(w, r); ok {
		writeRaw(w, sch.Text)
	}
}

// usages returns the versions that hold the schema of the path's ID: not
// deleted ones, unless deleted=true.
func (h *Handler) usages(w http.ResponseWriter, r *http.Request) ([]metadata.SubjectVersion, bool) {
	v, sch, ok := h.schemaAt(w, r)
	if !ok {
		return nil, false
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	uses, err := v.Usages(ctx, sch.ID)
	if err != nil {
		h.fail(w, r, err, where{id: sch.ID})
		return nil, false
	}
	if !flag(r, "deleted") {
		uses = metadata.LiveVersions(uses)
	}
	return uses, true
}

// GET /schemas/ids/{id}/versions
func (h *Handler) getSchemaVersions(w http.ResponseWriter, r *http.Request) {
	uses, ok := h.usages(w, r)
	if !ok {
		return
	}
	out := []subjectVersion{}
	for _, u := range uses {
		out = append(out, subjectVersion{Subject: u.Subject, Version: u.Version})
	}
	reply(w, out)
}

// GET /schemas/ids/{id}/subjects
func (h *Handler) getSchemaSubjects(w http.ResponseWriter, r *http.Request) {
	uses, ok := h.usages(w, r)
	if !ok {
		return
	}
	out := []string{}
	for _, u := range uses {
		if len(out) == 0 || out[len(out)-1] != u.Subject {
			out = append(out, u.Subject)
		}
	}
	reply(w, out)
}

// GET /config and /config/{subject}
func (h *Handler) getConfig(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	at := where{subject: subject}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	level, set, err := v.Compatibility(ctx, subject)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	if !set && subject != "" {
		if !flag(r, "defaultToGlobal") {
			h.fail(w, r, metadata.ErrSubjectCompatibilityNotSet, at)
			return
		}
		if level, _, err = v.Compatibility(ctx, ""); err != nil {
			h.fail(w, r, err, at)
			return
		}
	}
	reply(w, configResponse{CompatibilityLevel: level})
}

// PUT /config and /config/{subject}
func (h *Handler) setConfig(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	at := where{subject: subject}
	var req configRequest
	if err := readBody(r, maxSmallBody, &req, newAPIError(codeInvalidCompatibilityLevel, compatibilityLevelsMessage)); err != nil {
		h.fail(w, r, err, at)
		return
	}
	level := strings.ToUpper(req.Compatibility)
	if !metadata.ValidCompatibility(level) {
		h.fail(w, r, metadata.ErrInvalidCompatibility, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	if err := h.store.SetSchemaCompatibility(ctx, subject, level); err != nil {
		h.fail(w, r, err, at)
		return
	}
	reply(w, configRequest{Compatibility: level})
}

// DELETE /config and /config/{subject}: back to the global level (or,
// for the global one, to BACKWARD); answers with the level it had.
func (h *Handler) deleteConfig(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	at := where{subject: subject}
	ctx, cancel := ctxFor(r)
	defer cancel()
	prev, err := h.store.DeleteSchemaCompatibility(ctx, subject)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	reply(w, configResponse{CompatibilityLevel: prev})
}

// POST /compatibility/subjects/{subject}/versions/{version} checks against
// that version in the direction of the subject's level;
// /compatibility/subjects/{subject}/versions checks against the versions
// the level does (the latest, or all for a transitive level).
func (h *Handler) compatibility(w http.ResponseWriter, r *http.Request) {
	subject, err := subjectOf(r)
	at := where{subject: subject, version: r.PathValue("version")}
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	version := 0 // all, per the level
	if at.version != "" {
		if version, err = parseVersion(at.version); err != nil {
			h.fail(w, r, err, at)
			return
		}
	}
	_, p, err := readSchema(r)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ctx, cancel := ctxFor(r)
	defer cancel()
	v, err := h.store.SchemaView(ctx)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	sch, err := v.ResolveReferences(ctx, p.schema)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	ps := newParser(v)
	parsed, err := ps.validate(ctx, sch)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	level, err := v.EffectiveCompatibility(ctx, subject)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	var against []metadata.SubjectVersion
	if version == 0 {
		versions, err := v.Versions(ctx, subject)
		if err != nil {
			h.fail(w, r, err, at)
			return
		}
		against = checkAgainst(level, versions)
	} else {
		sv, err := h.version(ctx, v, subject, version, false)
		if err != nil {
			h.fail(w, r, err, at)
			return
		}
		if level != metadata.CompatNone {
			against = []metadata.SubjectVersion{sv}
		}
	}
	msgs, err := ps.incompatibilities(ctx, level, sch, parsed, against)
	if err != nil {
		h.fail(w, r, err, at)
		return
	}
	resp := compatibilityResponse{IsCompatible: len(msgs) == 0}
	if flag(r, "verbose") {
		resp.Messages = msgs
		if resp.Messages == nil {
			resp.Messages = []string{}
		}
	}
	reply(w, resp)
}

// GET /mode and /mode/{subject}: floe's registry is always READWRITE.
func (h *Handler) getMode(w http.ResponseWriter, r *http.Request) {
	reply(w, struct {
		Mode string `json:"mode"`
	}{"READWRITE"})
}

// PUT /mode and /mode/{subject}: READWRITE is accepted (nothing
// changes); other modes are not served.
func (h *Handler) setMode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mode string `json:"mode"`
	}
	if err := readBody(r, maxSmallBody, &req, newAPIError(codeInvalidMode, "Invalid mode")); err != nil {
		h.fail(w, r, err, where{})
		return
	}
	if !strings.EqualFold(req.Mode, "READWRITE") {
		h.fail(w, r, newAPIError(codeInvalidMode, "Invalid mode %q: floe's registry serves only READWRITE", req.Mode), where{})
		return
	}
	reply(w, struct {
		Mode string `json:"mode"`
	}{"READWRITE"})
}
