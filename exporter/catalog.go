package exporter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	"github.com/jackc/pgx/v5/pgconn"
	// Registers the s3 scheme for warehouses in S3 and S3-compatible
	// stores.
	_ "github.com/apache/iceberg-go/io/gocloud/s3"
	// Registers the pgx database/sql driver for PostgreSQL catalogs.
	_ "github.com/jackc/pgx/v5/stdlib"
	// Registers the pure-Go sqlite database/sql driver for SQLite
	// catalogs.
	_ "modernc.org/sqlite"
)

// ErrCatalogURL: a catalog URL that does not parse or names no known
// catalog.
var ErrCatalogURL = errors.New("iceberg catalog URL")

// Catalog is an open Iceberg catalog.
type Catalog interface {
	catalog.Catalog
	// Close releases its connections.
	Close() error
}

// catalogName names floe's catalog in the SQL catalog's rows.
const catalogName = "floe"

// OpenCatalog connects to the Iceberg catalog a URL names:
//
//	sqlite:///abs/path/catalog.db, sqlite:rel/path.db   a SQLite file (created if missing)
//	postgres://user@host:5432/db?sslmode=require        PostgreSQL (password from PGPASSWORD)
//	rest+https://host/path, rest+http://host:8181       an Iceberg REST catalog
//
// props are the table IO's properties (the warehouse's S3 endpoint and
// credentials) and the warehouse location; a REST catalog's token comes
// from the FLOE_ICEBERG_REST_TOKEN environment variable, or its OAuth
// client credential from FLOE_ICEBERG_REST_CREDENTIAL.
func OpenCatalog(ctx context.Context, rawURL string, props iceberg.Properties) (Catalog, error) {
	scheme, rest_, ok := strings.Cut(rawURL, ":")
	if !ok {
		return nil, fmt.Errorf("%w %q: want sqlite:PATH, postgres://..., or rest+https://...", ErrCatalogURL, rawURL)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		path := strings.TrimPrefix(rest_, "//")
		if path == "" {
			return nil, fmt.Errorf("%w %q: no file", ErrCatalogURL, rawURL)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("creating the SQLite catalog's directory: %w", err)
		}
		// WAL and a busy timeout let a reader (floe topic describe, a
		// query engine) share the file with the exporter.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
		return openSQL(ctx, "sqlite", dsn, sqlcat.SQLite, props)
	case "postgres", "postgresql":
		return openSQL(ctx, "pgx", rawURL, sqlcat.Postgres, props)
	case "rest+http", "rest+https":
		u, err := url.Parse(strings.TrimPrefix(rawURL, "rest+"))
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrCatalogURL, rawURL, err)
		}
		opts := []rest.Option{rest.WithAdditionalProps(props)}
		if wh := props["warehouse"]; wh != "" {
			opts = append(opts, rest.WithWarehouseLocation(wh))
		}
		if tok := os.Getenv("FLOE_ICEBERG_REST_TOKEN"); tok != "" {
			opts = append(opts, rest.WithOAuthToken(tok))
		}
		if cred := os.Getenv("FLOE_ICEBERG_REST_CREDENTIAL"); cred != "" {
			opts = append(opts, rest.WithCredential(cred))
		}
		cat, err := rest.NewCatalog(ctx, catalogName, u.String(), opts...)
		if err != nil {
			return nil, fmt.Errorf("connecting to the REST catalog %s: %w", u.Redacted(), err)
		}
		return restCatalog{cat}, nil
	}
	return nil, fmt.Errorf("%w %q: unknown scheme %q (sqlite, postgres, rest+http, rest+https)", ErrCatalogURL, rawURL, scheme)
}

func openSQL(ctx context.Context, driver, dsn string, dialect sqlcat.SupportedDialect, props iceberg.Properties) (Catalog, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the %s catalog: %w", dialect, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to the %s catalog: %w", dialect, err)
	}
	// NewCatalog creates the catalog's tables when missing. PostgreSQL
	// lets only one of the sessions that create a table at once succeed
	// (exporter replicas starting together on an empty database); the
	// others fail once it commits, and find the table when they try again.
	var cat *sqlcat.Catalog
	for attempt := 1; ; attempt++ {
		cat, err = sqlcat.NewCatalog(catalogName, db, dialect, props)
		if err == nil || attempt == 5 || !createdConcurrently(err) {
			break
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("opening the %s catalog: %w", dialect, ctx.Err())
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening the %s catalog: %w", dialect, err)
	}
	return &ownedSQL{Catalog: cat, db: db}, nil
}

// createdConcurrently reports whether err is PostgreSQL's answer to a
// CREATE TABLE IF NOT EXISTS racing another session's: a unique violation
// in its catalog, or a relation or type that exists after all.
func createdConcurrently(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", // unique_violation (pg_type_typname_nsp_index)
		"42P07", // duplicate_table
		"42710": // duplicate_object (the table's row type)
		return true
	}
	return false
}

// ownedSQL closes the database the catalog was opened on with it.
type ownedSQL struct {
	*sqlcat.Catalog
	db *sql.DB
}

func (c *ownedSQL) Close() error {
	err := c.Catalog.Close()
	if derr := c.db.Close(); err == nil {
		err = derr
	}
	return err
}

// restCatalog holds no connections of its own to close.
type restCatalog struct{ *rest.Catalog }

func (restCatalog) Close() error { return nil }
