package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPoolRefusesFilesWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	if _, err := Pool(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file gave a pool")
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Pool(junk); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("a file without certificates: %v", err)
	}
}
