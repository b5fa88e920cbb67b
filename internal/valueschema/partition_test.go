package valueschema

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePartitionBy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []PartitionTerm
	}{
		{"", nil},
		{"   ", nil},
		{"partition", []PartitionTerm{{"identity", 0, "partition"}}},
		{"day(timestamp)", []PartitionTerm{{"day", 0, "timestamp"}}},
		{" day ( timestamp ) , bucket( 16 ,user.id ),truncate(4,name), region , year(created), identity(a_b)",
			[]PartitionTerm{{"day", 0, "timestamp"}, {"bucket", 16, "user.id"}, {"truncate", 4, "name"}, {"identity", 0, "region"}, {"year", 0, "created"}, {"identity", 0, "a_b"}}},
		{"month(a), hour(b), HOURS(c), Days(d), years(e), months(f)",
			[]PartitionTerm{{"month", 0, "a"}, {"hour", 0, "b"}, {"hour", 0, "c"}, {"day", 0, "d"}, {"year", 0, "e"}, {"month", 0, "f"}}},
		{"bucket(2147483647, _x9)", []PartitionTerm{{"bucket", 2147483647, "_x9"}}},
		{"a, b.c, day, year", []PartitionTerm{{"identity", 0, "a"}, {"identity", 0, "b.c"}, {"identity", 0, "day"}, {"identity", 0, "year"}}},
		// A column partitioned by identity and by a transform, or by bucket and truncate.
		{"id, bucket(8, id), truncate(10, id), day(ts), ts", []PartitionTerm{{"identity", 0, "id"}, {"bucket", 8, "id"}, {"truncate", 10, "id"}, {"day", 0, "ts"}, {"identity", 0, "ts"}}},
		{"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", []PartitionTerm{{"identity", 0, "a"}, {"identity", 0, "b"}, {"identity", 0, "c"}, {"identity", 0, "d"}, {"identity", 0, "e"}, {"identity", 0, "f"}, {"identity", 0, "g"}, {"identity", 0, "h"}, {"identity", 0, "i"}, {"identity", 0, "j"}, {"identity", 0, "k"}, {"identity", 0, "l"}, {"identity", 0, "m"}, {"identity", 0, "n"}, {"identity", 0, "o"}, {"identity", 0, "p"}}},
	} {
		got, err := ParsePartitionBy(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
			continue
		}
		// String gives text that parses back to the same terms.
		var texts []string
		for _, term := range got {
			texts = append(texts, term.String())
		}
		again, err := ParsePartitionBy(strings.Join(texts, ", "))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q: %v from String, %v", tc.in, again, err)
		}
	}
}

func TestParsePartitionByRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{",", "expected a column name at byte 0"},
		{"a,", "expected a column name at the end"},
		{"a,,b", "expected a column name at byte 2"},
		{"a b", `expected a comma after "a" at byte 2`},
		{"a.", "expected a column name at the end"},
		{".a", "expected a column name at byte 0"},
		{"a..b", "expected a column name at byte 2"},
		{"1a", `expected a column name at byte 0, found "1"`},
		{"a-b", `expected a comma after "a" at byte 1`},
		{"\"a\"", `expected a column name at byte 0`},
		{"week(ts)", `unknown transform "week" (identity, year, month, day, hour, bucket, truncate)`},
		{"void(ts)", `unknown transform "void"`},
		{"day(ts", "day takes one column: day(column)"},
		{"day(ts, x)", "day takes one column"},
		{"day()", "expected a column name at byte 4"},
		{"day(1, ts)", `expected a column name at byte 4, found "1"`},
		{"bucket(ts)", "bucket(N, column): the bucket count N must be a number"},
		{"bucket(0, id)", "bucket(0, ...): the bucket count must be at least 1"},
		{"bucket(-1, id)", "the bucket count N must be a number"},
		{"truncate(0, name)", "truncate(0, ...): the width must be at least 1"},
		{"bucket(2147483648, id)", "bucket(2147483648, ...): the bucket count must be at most 2147483647"},
		{"bucket(99999999999999999999999, id)", "must be at most 2147483647"},
		{"bucket(16 id)", "bucket takes a number and a column: bucket(N, column)"},
		{"bucket(16, id", "bucket takes a number and a column"},
		{"bucket(16, id, x)", "bucket takes a number and a column"},
		{"day(ts))", `expected a comma after "day(ts)" at byte 7`},
		{"a, a", `"a" is listed twice`},
		{"day(ts), DAY( ts )", `"DAY( ts )" is listed twice`},
		{"bucket(16, id), bucket(8, id)", `"bucket(16, id)" and "bucket(8, id)" both partition id by bucket; keep one`},
		{"day(ts), hour(ts)", `"day(ts)" and "hour(ts)" both partition ts by time; keep one`},
		{"year(ts), month(ts)", `both partition ts by time`},
		{"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "more than 16 terms"},
		{"é", "expected a column name at byte 0"},
	} {
		terms, err := ParsePartitionBy(tc.in)
		if err == nil {
			t.Errorf("%q: accepted as %v", tc.in, terms)
			continue
		}
		if !errors.Is(err, ErrInvalidPartitionBy) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v is not one line matching ErrInvalidPartitionBy", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, err, tc.want)
		}
	}
}
