package schemaregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Type is a schema's kind, as the registry's schemaType names it.
type Type string

// The schema types.
const (
	Avro     Type = "AVRO"
	Protobuf Type = "PROTOBUF"
	JSON     Type = "JSON"
)

// Reference is a schema a name in another schema stands for.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is a schema the registry holds, with the subject and version it
// was read as (empty and 0 when read by ID).
type Schema struct {
	ID         int
	Subject    string
	Version    int
	Type       Type
	Text       string // the schema: Avro JSON, .proto source or JSON Schema
	References []Reference
}

// Config configures a Client.
type Config struct {
	// URL is the registry's base URL, e.g. http://registry:8081.
	URL string
	// UserInfo is "user:password" for HTTP Basic authentication, as
	// Confluent's basic.auth.user.info; empty for none.
	UserInfo string
	// BearerToken is sent as "Authorization: Bearer ..." when UserInfo is
	// empty; empty for none.
	BearerToken string
	// Timeout bounds each request. Default 10s.
	Timeout time.Duration
	// CacheSize bounds the schemas cached by ID and by version. Default
	// 1000.
	CacheSize int
	// HTTPClient sends the requests. Default: a client of its own.
	HTTPClient *http.Client
}

// Client reads schemas from a Confluent-compatible registry. It is safe
// for concurrent use.
type Client struct {
	base    *url.URL
	cfg     Config
	http    *http.Client
	retries []time.Duration // waits before the second and third tries

	mu        sync.Mutex
	byID      map[int]Schema
	byVersion map[versionKey]Schema
}

type versionKey struct {
	subject string
	version int
}

// New returns a client of the registry at cfg.URL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schemaregistry: the registry URL %q is not http(s)://host[:port][/path]", cfg.URL)
	}
	if cfg.UserInfo != "" && !strings.Contains(cfg.UserInfo, ":") {
		return nil, errors.New("schemaregistry: the registry's user info must be user:password")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1000
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		base: u, cfg: cfg, http: hc,
		retries:   []time.Duration{100 * time.Millisecond, 500 * time.Millisecond},
		byID:      map[int]Schema{},
		byVersion: map[versionKey]Schema{},
	}, nil
}

// URL is the registry's base URL, without its user info.
func (c *Client) URL() string {
	u := *c.base
	u.User = nil
	return u.String()
}

// Latest reads the subject's latest version. It is not cached, but the
// schema is, by its ID.
func (c *Client) Latest(ctx context.Context, subject string) (Schema, error) {
	s, err := c.get(ctx, "/subjects/"+url.PathEscape(subject)+"/versions/latest")
	if err == nil && s.ID > 0 {
		c.cacheID(Schema{ID: s.ID, Type: s.Type, Text: s.Text, References: s.References})
	}
	return s, err
}

func (c *Client) cacheID(s Schema) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.cfg.CacheSize {
		clear(c.byID) // IDs are read again as they are met
	}
	c.byID[s.ID] = s
}

// Version reads a version of a subject, cached.
func (c *Client) Version(ctx context.Context, subject string, version int) (Schema, error) {
	k := versionKey{subject, version}
	c.mu.Lock()
	s, ok := c.byVersion[k]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.get(ctx, "/subjects/"+url.PathEscape(subject)+"/versions/"+strconv.Itoa(version))
	if err != nil {
		return Schema{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byVersion) >= c.cfg.CacheSize {
		clear(c.byVersion)
	}
	c.byVersion[k] = s
	return s, nil
}

// ByID reads the schema of an ID, cached.
func (c *Client) ByID(ctx context.Context, id int) (Schema, error) {
	c.mu.Lock()
	s, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := c.get(ctx, "/schemas/ids/"+strconv.Itoa(id))
	if err != nil {
		return Schema{}, err
	}
	s.ID = id
	c.cacheID(s)
	return s, nil
}

// maxReferences bounds the schemas a schema's references reach, all
// levels together.
const maxReferences = 256

// References reads the schemas s refers to, and those they refer to, by
// the names they are referred to by, in an order where every schema
// comes after those it refers to (the order Avro named types must be
// defined in). A name referred to twice is read once.
func (c *Client) References(ctx context.Context, s Schema) ([]NamedSchema, error) {
	var (
		out  []NamedSchema
		seen = map[string]bool{}
		walk func(refs []Reference, depth int) error
	)
	walk = func(refs []Reference, depth int) error {
		for _, r := range refs {
			if seen[r.Name] {
				continue
			}
			seen[r.Name] = true
			if depth > 32 || len(seen) > maxReferences {
				return fmt.Errorf("schemaregistry: schema %d refers to more than %d schemas, or deeper than 32 levels", s.ID, maxReferences)
			}
			rs, err := c.Version(ctx, r.Subject, r.Version)
			if err != nil {
				return fmt.Errorf("reading reference %q (subject %s version %d): %w", r.Name, r.Subject, r.Version, err)
			}
			if err := walk(rs.References, depth+1); err != nil {
				return err
			}
			out = append(out, NamedSchema{Name: r.Name, Schema: rs})
		}
		return nil
	}
	return out, walk(s.References, 0)
}

// NamedSchema is a referenced schema and the name it is referred to by.
type NamedSchema struct {
	Name string
	Schema
}

// maxBody bounds a registry answer read.
const maxBody = 8 << 20

// schemaBody is the registry's answer for a schema or a version.
type schemaBody struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references"`
}

// get reads a schema answer of path, trying again when no answer came,
// or a 429 or 5xx did.
func (c *Client) get(ctx context.Context, path string) (Schema, error) {
	var err error
	for try := 0; ; try++ {
		var retry bool
		var s Schema
		s, retry, err = c.try(ctx, path)
		if err == nil || !retry || try >= len(c.retries) || ctx.Err() != nil {
			return s, err
		}
		select {
		case <-time.After(c.retries[try]):
		case <-ctx.Done():
			return Schema{}, err
		}
	}
}

func (c *Client) try(ctx context.Context, path string) (s Schema, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL()+path, nil)
	if err != nil {
		return Schema{}, false, fmt.Errorf("schemaregistry: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	switch {
	case c.cfg.UserInfo != "":
		user, pass, _ := strings.Cut(c.cfg.UserInfo, ":")
		req.SetBasicAuth(user, pass)
	case c.base.User != nil:
		pass, _ := c.base.User.Password()
		req.SetBasicAuth(c.base.User.Username(), pass)
	case c.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.cfg.BearerToken)
	}
	what := "GET " + path
	resp, err := c.http.Do(req)
	if err != nil {
		return Schema{}, true, fmt.Errorf("schema registry %s: %s: %w", c.URL(), what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Schema{}, true, fmt.Errorf("schema registry %s: %s: reading the answer: %w", c.URL(), what, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, Code: resp.StatusCode, Request: what}
		var eb struct {
			Code    int    `json:"error_code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &eb) == nil && eb.Code != 0 {
			e.Code, e.Message = eb.Code, eb.Message
		} else {
			e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
			if e.Message == "" {
				e.Message = http.StatusText(resp.StatusCode)
			}
		}
		return Schema{}, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, e
	}
	var b schemaBody
	if err := json.Unmarshal(body, &b); err != nil {
		return Schema{}, false, fmt.Errorf("schema registry %s: %s: the answer is not a schema: %w", c.URL(), what, err)
	}
	t := Type(strings.ToUpper(b.SchemaType))
	switch t {
	case "":
		t = Avro
	case Avro, Protobuf, JSON:
	default:
		return Schema{}, false, fmt.Errorf("schema registry %s: %s: unknown schemaType %q", c.URL(), what, b.SchemaType)
	}
	if b.Schema == "" {
		return Schema{}, false, fmt.Errorf("schema registry %s: %s: the answer has no schema", c.URL(), what)
	}
	return Schema{ID: b.ID, Subject: b.Subject, Version: b.Version, Type: t, Text: b.Schema, References: b.References}, false, nil
}
