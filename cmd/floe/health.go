package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthCmd is `floe health`: a health check for containers without a
// shell or curl (the distroless image). It GETs one URL and exits 0 when the
// answer is 200, 1 otherwise, with one line saying why.
func newHealthCmd() *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Exit 0 if a floe HTTP endpoint answers 200 (for container health checks)",
		Long: `Check a floe process's HTTP endpoint and exit 0 if it answers 200 OK, or 1.
Container images without a shell use it as their health check, e.g.

  floe health --url http://127.0.0.1:9644/readyz     an agent ready for traffic
  floe health --url http://127.0.0.1:9645/healthz    a compactor that is up`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := checkHealth(ctx, url); err != nil {
				return exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:9644/readyz", "URL to GET")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	return cmd
}

// checkHealth GETs url and returns nil for 200 OK, else an error naming the
// status and the start of the body.
func checkHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
