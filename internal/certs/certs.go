// Package certs reads the PEM files floe's TLS settings name.
package certs

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Pool reads the PEM certificates in path into a pool, for checking the
// certificates of servers (or clients) against. A file without a PEM
// certificate is an error.
func Pool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificates", path)
	}
	return pool, nil
}
