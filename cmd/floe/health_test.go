package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ready\n"))
		case "/draining":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		url     string
		wantErr string // "" means healthy
	}{
		{srv.URL + "/readyz", ""},
		{srv.URL + "/draining", "503 Service Unavailable not ready"},
		{srv.URL + "/nope", "404 Not Found"},
		{closedURL + "/readyz", "connect"},
		{"::not a url", "missing protocol scheme"},
	}
	for _, tt := range tests {
		err := checkHealth(context.Background(), tt.url)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("checkHealth(%s) = %v, want nil", tt.url, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("checkHealth(%s) = %v, want an error containing %q", tt.url, err, tt.wantErr)
		}
	}
}
