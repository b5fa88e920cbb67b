package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres returns the URL of a fresh, empty database for one test on the
// localstack PostgreSQL (FLOE_TEST_POSTGRES_URL, a superuser's URL),
// dropped when the test ends. The test is skipped when no PostgreSQL is
// configured, or fails under FLOE_TEST_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("FLOE_TEST_POSTGRES_URL")
	if admin == "" {
		if os.Getenv("FLOE_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal("FLOE_TEST_POSTGRES_URL is unset but FLOE_TEST_REQUIRE_POSTGRES=1: start localstack (localstack/start.sh) and source .cache/localstack/env")
		}
		t.Skip("skipped: no PostgreSQL (set FLOE_TEST_POSTGRES_URL; localstack/start.sh starts one and writes it to .cache/localstack/env)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("FLOE_TEST_POSTGRES_URL: %v", err)
	}
	name := databaseName(t)
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL at %s not answering: %v", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dropping database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		// FORCE ends the sessions a test left open.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// databaseName is a fresh database name for t: lower case letters, digits
// and underscores, within PostgreSQL's 63 bytes.
func databaseName(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "test_" + name + "_" + hex.EncodeToString(b[:])
}
