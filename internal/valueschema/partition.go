package valueschema

import (
	"fmt"
	"strconv"
	"strings"
)

// PartitionTerm is one term of a table's partitioning: a transform of a
// column.
type PartitionTerm struct {
	// Transform is identity, year, month, day, hour, bucket or truncate.
	Transform string
	// Param is bucket's count of buckets or truncate's width; 0 for the
	// others.
	Param int
	// Column is a column name or a dotted path (a.b), unresolved: the
	// exporter resolves it against the record's columns.
	Column string
}

// String gives the term as ParsePartitionBy reads it: id, day(ts),
// bucket(16, id).
func (t PartitionTerm) String() string {
	switch {
	case t.Transform == "identity":
		return t.Column
	case t.Param != 0:
		return fmt.Sprintf("%s(%d, %s)", t.Transform, t.Param, t.Column)
	}
	return t.Transform + "(" + t.Column + ")"
}

// MaxPartitionTerms is how many terms a partitioning may have.
const MaxPartitionTerms = 16

// maxPartitionParam is the largest bucket count or truncate width: an
// Iceberg int.
const maxPartitionParam = 1<<31 - 1

// transforms maps the names ParsePartitionBy accepts, in any case, to a
// transform, with whether it takes a count or width first. Spark's
// plural names (years, days, ...) are accepted too.
var transforms = map[string]struct {
	name  string
	param bool
}{
	"identity": {"identity", false},
	"year":     {"year", false}, "years": {"year", false},
	"month": {"month", false}, "months": {"month", false},
	"day": {"day", false}, "days": {"day", false},
	"hour": {"hour", false}, "hours": {"hour", false},
	"bucket":   {"bucket", true},
	"truncate": {"truncate", true},
}

// ParsePartitionBy parses floe.iceberg.partition.by: comma-separated
// terms, each `column` (identity), `year(col)`, `month(col)`, `day(col)`,
// `hour(col)`, `bucket(N, col)` or `truncate(W, col)`, with spaces
// allowed between tokens. Column names are identifiers
// ([A-Za-z_][A-Za-z0-9_]*) or dotted paths of them (a.b). An empty (or
// blank) string has no terms.
//
// It refuses unknown transforms, a count or width below 1, more than
// MaxPartitionTerms terms, and two terms that partition a column the same
// way: the same transform twice (whatever its parameter, as Iceberg names
// both partition fields alike), or two time transforms (year, month, day,
// hour) of one column, which Iceberg refuses as redundant. The error
// matches ErrInvalidPartitionBy.
func ParsePartitionBy(s string) ([]PartitionTerm, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p := partitionParser{s: s}
	var terms []PartitionTerm
	var texts []string
	for {
		start := p.skipSpace()
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		text := strings.TrimSpace(s[start:p.i])
		for j, u := range terms {
			if same(t, u) {
				if t == u {
					return nil, p.fail("%q is listed twice", text)
				}
				return nil, p.fail("%q and %q both partition %s by %s; keep one", texts[j], text, t.Column, kindOf(t.Transform))
			}
		}
		terms, texts = append(terms, t), append(texts, text)
		if len(terms) > MaxPartitionTerms {
			return nil, p.fail("more than %d terms", MaxPartitionTerms)
		}
		p.skipSpace()
		if p.i == len(s) {
			return terms, nil
		}
		if s[p.i] != ',' {
			return nil, p.fail("expected a comma after %q at byte %d", text, p.i)
		}
		p.i++
	}
}

// same reports whether two terms partition a column alike.
func same(t, u PartitionTerm) bool {
	return t.Column == u.Column && kindOf(t.Transform) == kindOf(u.Transform)
}

func kindOf(transform string) string {
	switch transform {
	case "year", "month", "day", "hour":
		return "time"
	}
	return transform
}

type partitionParser struct {
	s string
	i int
}

func (p *partitionParser) fail(format string, args ...any) error {
	return &partitionError{msg: fmt.Sprintf(format, args...)}
}

func (p *partitionParser) skipSpace() int {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	return p.i
}

// term reads `column` or `transform(column)` or `transform(N, column)`.
func (p *partitionParser) term() (PartitionTerm, error) {
	name, err := p.path()
	if err != nil {
		return PartitionTerm{}, err
	}
	p.skipSpace()
	if p.i == len(p.s) || p.s[p.i] != '(' {
		return PartitionTerm{Transform: "identity", Column: name}, nil
	}
	tr, ok := transforms[strings.ToLower(name)]
	if !ok {
		return PartitionTerm{}, p.fail("unknown transform %q (identity, year, month, day, hour, bucket, truncate)", name)
	}
	p.i++ // (
	t := PartitionTerm{Transform: tr.name}
	p.skipSpace()
	if tr.param {
		start := p.i
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
		}
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		what := "the bucket count"
		if tr.name == "truncate" {
			what = "the width"
		}
		switch {
		case start == p.i:
			return PartitionTerm{}, p.fail("%s(N, column): %s N must be a number", tr.name, what)
		case err != nil || n > maxPartitionParam:
			return PartitionTerm{}, p.fail("%s(%s, ...): %s must be at most %d", tr.name, p.s[start:p.i], what, maxPartitionParam)
		case n < 1:
			return PartitionTerm{}, p.fail("%s(%d, ...): %s must be at least 1", tr.name, n, what)
		}
		t.Param = int(n)
		p.skipSpace()
		if p.i == len(p.s) || p.s[p.i] != ',' {
			return PartitionTerm{}, p.fail("%s takes a number and a column: %s(N, column)", tr.name, tr.name)
		}
		p.i++
		p.skipSpace()
	}
	if t.Column, err = p.path(); err != nil {
		return PartitionTerm{}, err
	}
	p.skipSpace()
	if p.i == len(p.s) || p.s[p.i] != ')' {
		if tr.param {
			return PartitionTerm{}, p.fail("%s takes a number and a column: %s(N, column)", tr.name, tr.name)
		}
		return PartitionTerm{}, p.fail("%s takes one column: %s(column)", tr.name, tr.name)
	}
	p.i++
	return t, nil
}

// path reads an identifier or a dotted path of them.
func (p *partitionParser) path() (string, error) {
	start := p.i
	for {
		first := p.i
		for p.i < len(p.s) && isIdentByte(p.s[p.i], p.i == first) {
			p.i++
		}
		if p.i == first {
			if p.i < len(p.s) {
				return "", p.fail("expected a column name at byte %d, found %q", p.i, p.s[p.i:p.i+1])
			}
			return "", p.fail("expected a column name at the end")
		}
		if p.i == len(p.s) || p.s[p.i] != '.' {
			return p.s[start:p.i], nil
		}
		p.i++
	}
}

func isIdentByte(c byte, first bool) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}
