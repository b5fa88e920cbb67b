package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestItemReport(t *testing.T) {
	type item struct {
		name string
		err  error
	}
	for _, tc := range []struct {
		name           string
		out            string
		items          []item
		stdout, stderr string
		err            string // "" when the command succeeds
	}{
		{
			name:   "text, every item done",
			out:    outputText,
			items:  []item{{"a", nil}, {"b", nil}},
			stdout: "deleted topic a\ndeleted topic b\n",
		},
		{
			name:   "text, some failed",
			out:    outputText,
			items:  []item{{"a", nil}, {"b", errors.New(`topic "b": broken`)}, {"c", errors.New(`topic "c": gone`)}},
			stdout: "deleted topic a\n",
			stderr: "floe: topic \"b\": broken\n",
			err:    "topic \"c\": gone\n2 of 3 topics failed",
		},
		{
			name:  "text, the one item asked for failed",
			out:   outputText,
			items: []item{{"a", errors.New(`topic "a": gone`)}},
			err:   `topic "a": gone`,
		},
		{
			name:   "json, some failed",
			out:    outputJSON,
			items:  []item{{"a", nil}, {"b", errors.New(`topic "b": gone`)}},
			stdout: "{\n  \"topics\": [\n    {\n      \"name\": \"a\"\n    },\n    {\n      \"name\": \"b\",\n      \"error\": \"topic \\\"b\\\": gone\"\n    }\n  ]\n}\n",
			err:    "topic \"b\": gone\n1 of 2 topics failed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			rep := newItemReport(cmd, tc.out, "topics", len(tc.items))
			var res topicResults
			for _, it := range tc.items {
				tr := topicResult{Name: it.name}
				if it.err != nil {
					tr.Error = rep.fail(it.err)
				} else {
					rep.ok("deleted topic %s", it.name)
				}
				res.Topics = append(res.Topics, tr)
			}
			err := rep.finish(res)
			if stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.err != "" && (err == nil || err.Error() != tc.err || exitCode(err) != 1):
				t.Errorf("error %v (exit %d), want %q (exit 1)", err, exitCode(err), tc.err)
			}
		})
	}
}
