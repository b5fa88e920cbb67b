package valueschema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode parses a JSON value against the schema f, which must be an
// Object (normally the root ParseJSONSchema returned). The result is one
// []any per Object, aligned with its Fields (nil where a field is absent
// or null), []any for arrays (empty, not nil, for []), int64 (Long),
// float64 (Double), bool, string, int64 microseconds since the Unix epoch
// UTC (Timestamp) and int32 days since the epoch (Date).
//
// A value that does not match, or is not JSON, gives a *MismatchError
// saying why in one line, with the path of the field at fault:
// `user.age: 12.5 is not an integer`, `missing required field "id"`,
// `tags[2]: null is not a string`. Properties an open object does not
// list are checked for JSON syntax only and skipped.
//
// Decode reads value once, without recursing deeper than the schema, and
// does not retain it: the strings of a value up to 4 KiB share one copy
// of it, larger values' strings are copied one by one. It is safe to call
// concurrently on one schema, which it does not modify.
func (f *Field) Decode(value []byte) ([]any, error) {
	if f.Kind != Object {
		return nil, &MismatchError{Reason: fmt.Sprintf("the schema is %s, not an object", f.Kind.phrase())}
	}
	d := decoder{data: value}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, &MismatchError{Reason: "not a JSON object"}
	}
	out, err := d.object(f, 0)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return nil, d.syntax("data after the object")
	}
	return out, nil
}

// phrase names a kind in a message: "is not an integer".
func (k Kind) phrase() string {
	switch k {
	case Boolean:
		return "a boolean"
	case Long:
		return "an integer"
	case Double:
		return "a number"
	case String:
		return "a string"
	case Timestamp:
		return "an RFC 3339 date-time"
	case Date:
		return "an RFC 3339 date (YYYY-MM-DD)"
	case Object:
		return "an object"
	case Array:
		return "an array"
	case Binary:
		return "bytes"
	}
	return "of " + k.String()
}

// decoder reads one JSON value. It is a scanner that follows the schema:
// each level of the schema is one call of object, array or value, and
// values the schema does not describe are skipped by a loop with an
// explicit stack, so hostile nesting costs memory in proportion to the
// input, never stack.
type decoder struct {
	data []byte
	pos  int
	buf  []byte // unescaped strings, reused
	// text is a copy of a small value, made for its first string: its
	// strings without escapes are substrings of it, one allocation for
	// all. A string kept from the result keeps at most shareMax bytes.
	text string
}

// shareMax is the largest value whose strings share one copy of it.
const shareMax = 4096

// newString returns s, a string's contents read from data at start.
func (d *decoder) newString(s []byte, start int) string {
	if len(s) == 0 || len(d.data) > shareMax || start < 0 {
		return string(s)
	}
	if d.text == "" {
		d.text = string(d.data)
	}
	return d.text[start : start+len(s)]
}

func (d *decoder) object(f *Field, depth int) ([]any, error) {
	d.pos++ // {
	out := make([]any, len(f.Fields))
	var seenSmall uint64 // fields seen, for objects of up to 64 fields
	var seenBig []bool   // and for larger ones
	if len(f.Fields) > 64 {
		seenBig = make([]bool, len(f.Fields))
	}
	seen := func(i int) bool {
		if seenBig != nil {
			return seenBig[i]
		}
		return seenSmall&(1<<i) != 0
	}
	hint := 0 // where the next field probably is: values tend to follow the schema's order
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
	} else {
		for {
			key, err := d.key()
			if err != nil {
				return nil, err
			}
			i := lookup(f.Fields, key, hint)
			switch {
			case i < 0 && f.Closed:
				return nil, &MismatchError{Reason: "unexpected field " + quote(string(key))}
			case i < 0:
				if err := d.skip(); err != nil {
					return nil, err
				}
			case seen(i):
				return nil, &MismatchError{Reason: "duplicate field " + quote(f.Fields[i].Name)}
			default:
				if seenBig != nil {
					seenBig[i] = true
				} else {
					seenSmall |= 1 << i
				}
				hint = i + 1
				v, err := d.value(&f.Fields[i], depth+1, false)
				if err != nil {
					return nil, under(err, f.Fields[i].Name)
				}
				out[i] = v
			}
			d.ws()
			if d.pos >= len(d.data) {
				return nil, d.syntax("unexpected end")
			}
			c := d.data[d.pos]
			d.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				d.pos--
				return nil, d.syntax("expected , or } after a property")
			}
		}
	}
	for i := range f.Fields {
		if f.Fields[i].Required && !seen(i) {
			return nil, &MismatchError{Reason: "missing required field " + quote(f.Fields[i].Name)}
		}
	}
	return out, nil
}

func (d *decoder) array(f *Field, depth int) ([]any, error) {
	d.pos++ // [
	var out []any
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return []any{}, nil
	}
	for i := 0; ; i++ {
		d.ws()
		v, err := d.value(f.Elem, depth+1, true)
		if err != nil {
			return nil, atIndex(err, i)
		}
		if out == nil {
			out = make([]any, 0, 4)
		}
		out = append(out, v)
		d.ws()
		if d.pos >= len(d.data) {
			return nil, d.syntax("unexpected end")
		}
		c := d.data[d.pos]
		d.pos++
		if c == ']' {
			return out, nil
		}
		if c != ',' {
			d.pos--
			return nil, d.syntax("expected , or ] after an item")
		}
	}
}

// value reads the value of field f at d.pos, depth levels below the root.
func (d *decoder) value(f *Field, depth int, item bool) (any, error) {
	if f == nil || depth > MaxDepth {
		return nil, &MismatchError{Reason: fmt.Sprintf("the schema is invalid: an array without items or more than %d levels deep", MaxDepth)}
	}
	if d.pos >= len(d.data) {
		return nil, d.syntax("unexpected end")
	}
	start := d.pos
	switch c := d.data[d.pos]; {
	case c == 'n':
		if err := d.literal("null"); err != nil {
			return nil, err
		}
		switch {
		case f.Optional():
			return nil, nil
		case item:
			return nil, &MismatchError{Reason: "null is not " + f.Kind.phrase()}
		}
		return nil, &MismatchError{Reason: "a required field is null"}
	case f.Kind == Boolean && c == 't':
		return true, d.literal("true")
	case f.Kind == Boolean && c == 'f':
		return false, d.literal("false")
	case (f.Kind == Long || f.Kind == Double) && (c == '-' || '0' <= c && c <= '9'):
		lit, integral, err := d.number()
		if err != nil {
			return nil, err
		}
		if f.Kind == Double {
			x, err := strconv.ParseFloat(string(lit), 64)
			if err != nil {
				return nil, &MismatchError{Reason: show(lit) + " is out of range for a double"}
			}
			return x, nil
		}
		n, why := parseLong(lit, integral)
		if why != "" {
			return nil, &MismatchError{Reason: show(lit) + why}
		}
		return n, nil
	case (f.Kind == String || f.Kind == Timestamp || f.Kind == Date) && c == '"':
		s, ascii, err := d.str()
		if err != nil {
			return nil, err
		}
		switch f.Kind {
		case Timestamp:
			if t, ok := parseTimestamp(s); ok {
				return t, nil
			}
		case Date:
			if t, ok := parseDate(s); ok {
				return t, nil
			}
		default:
			if ascii || utf8.Valid(s) {
				from := start + 1 // where s is in data, unless it was unescaped
				if d.pos-from-1 != len(s) {
					from = -1
				}
				return d.newString(s, from), nil
			}
			return nil, &MismatchError{Reason: show(d.data[start:d.pos]) + " is not valid UTF-8"}
		}
		return nil, &MismatchError{Reason: show(d.data[start:d.pos]) + " is not " + f.Kind.phrase()}
	case f.Kind == Object && c == '{':
		v, err := d.object(f, depth)
		if err != nil {
			return nil, err
		}
		return v, nil
	case f.Kind == Array && c == '[':
		v, err := d.array(f, depth)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	// Not what the schema says: read it whole to say what it is.
	if err := d.skip(); err != nil {
		return nil, err
	}
	return nil, &MismatchError{Reason: show(d.data[start:d.pos]) + " is not " + f.Kind.phrase()}
}

// key reads a property name and the colon after it; the name is valid
// until the next string is read.
func (d *decoder) key() ([]byte, error) {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, d.syntax("expected a property name")
	}
	k, _, err := d.str()
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return nil, d.syntax("expected : after a property name")
	}
	d.pos++
	d.ws()
	return k, nil
}

// lookup finds the field named key, trying hint first.
func lookup(fields []Field, key []byte, hint int) int {
	if hint < len(fields) && fields[hint].Name == string(key) {
		return hint
	}
	for i := range fields {
		if fields[i].Name == string(key) {
			return i
		}
	}
	return -1
}

// str reads a string at d.pos (its opening quote) and returns its
// contents, unescaped into d.buf if it has escapes, so valid until the
// next string is read. ascii reports that no byte is 0x80 or above.
func (d *decoder) str() (s []byte, ascii bool, err error) {
	start := d.pos + 1
	ascii = true
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], ascii, nil
		case c == '\\':
			return d.strEscaped(start, i, ascii)
		case c < 0x20:
			d.pos = i
			return nil, false, d.syntax("control character in a string")
		case c >= 0x80:
			ascii = false
		}
	}
	d.pos = len(d.data)
	return nil, false, d.syntax("unterminated string")
}

// strEscaped goes on with str from the first backslash, at i.
func (d *decoder) strEscaped(start, i int, ascii bool) ([]byte, bool, error) {
	buf := append(d.buf[:0], d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos, d.buf = i+1, buf
			return buf, ascii, nil
		case c < 0x20:
			d.pos = i
			return nil, false, d.syntax("control character in a string")
		case c != '\\':
			if c >= 0x80 {
				ascii = false
			}
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			break
		}
		switch e := d.data[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, n := d.unicode(i)
			if n == 0 {
				d.pos = i
				return nil, false, d.syntax(`invalid \u escape`)
			}
			if r >= utf8.RuneSelf {
				ascii = false
			}
			buf = utf8.AppendRune(buf, r)
			i += n
			continue
		default:
			d.pos = i
			return nil, false, d.syntax("invalid escape in a string")
		}
		i += 2
	}
	d.pos, d.buf = len(d.data), buf
	return nil, false, d.syntax("unterminated string")
}

// unicode reads a \uXXXX escape at i, or a surrogate pair of two, and
// returns the rune and the bytes read (0: not an escape). A lone
// surrogate becomes U+FFFD, as encoding/json has it.
func (d *decoder) unicode(i int) (rune, int) {
	r := hex4(d.data, i+2)
	if r < 0 {
		return 0, 0
	}
	if r < 0xd800 || r > 0xdfff {
		return r, 6
	}
	if r <= 0xdbff && i+12 <= len(d.data) && d.data[i+6] == '\\' && d.data[i+7] == 'u' {
		if lo := hex4(d.data, i+8); 0xdc00 <= lo && lo <= 0xdfff {
			return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12
		}
	}
	return utf8.RuneError, 6
}

func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number reads a number at d.pos; integral reports that it has neither
// a fraction nor an exponent.
func (d *decoder) number() (lit []byte, integral bool, err error) {
	b, start := d.data, d.pos
	i := start
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		d.pos = i
		return nil, false, d.syntax("invalid number")
	}
	integral = true
	if i < len(b) && b[i] == '.' {
		i++
		integral = false
		if digits() == 0 {
			d.pos = i
			return nil, false, d.syntax("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		integral = false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.pos = i
			return nil, false, d.syntax("invalid number")
		}
	}
	d.pos = i
	return b[start:i], integral, nil
}

// parseLong converts a JSON number to int64 if it is an integer that
// fits, exactly: 1e3 and 2.0 are integers, 1.5 and 1e-1 are not. why
// finishes the sentence after the number when it does not.
func parseLong(lit []byte, integral bool) (n int64, why string) {
	neg := lit[0] == '-'
	s := lit
	if neg {
		s = s[1:]
	}
	if integral && len(s) <= 18 { // the common case: no overflow possible
		for _, c := range s {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, ""
	}
	// Split into integer digits, fraction digits and exponent.
	intPart, frac, exp := s, []byte(nil), int64(0)
	if i := indexAny(s, ".eE"); i >= 0 {
		intPart = s[:i]
		rest := s[i:]
		if rest[0] == '.' {
			j := indexAny(rest, "eE")
			if j < 0 {
				j = len(rest)
			}
			frac, rest = rest[1:j], rest[j:]
		}
		if len(rest) > 0 { // e[+-]digits
			rest = rest[1:]
			expNeg := rest[0] == '-'
			if rest[0] == '+' || rest[0] == '-' {
				rest = rest[1:]
			}
			for _, c := range rest {
				if exp < 1e9 { // saturate: beyond this, only zero fits
					exp = exp*10 + int64(c-'0')
				}
			}
			if expNeg {
				exp = -exp
			}
		}
	}
	// The significant digits of intPart+frac, without leading or
	// trailing zeros, times 10^e.
	total := len(intPart) + len(frac)
	digit := func(k int) byte {
		if k < len(intPart) {
			return intPart[k]
		}
		return frac[k-len(intPart)]
	}
	first, last := -1, -1
	for k := 0; k < total; k++ {
		if digit(k) != '0' {
			if first < 0 {
				first = k
			}
			last = k
		}
	}
	if first < 0 {
		return 0, ""
	}
	e := exp - int64(len(frac)) + int64(total-1-last)
	switch {
	case e < 0:
		return 0, " is not an integer"
	case int64(last-first+1)+e > 19:
		return 0, " is out of range for a 64-bit integer"
	}
	var u uint64 // below 10^19, so no overflow
	for k := first; k <= last; k++ {
		u = u*10 + uint64(digit(k)-'0')
	}
	for ; e > 0; e-- {
		u *= 10
	}
	switch {
	case !neg && u <= 1<<63-1:
		return int64(u), ""
	case neg && u <= 1<<63:
		return int64(-u), ""
	}
	return 0, " is out of range for a 64-bit integer"
}

func indexAny(b []byte, chars string) int {
	for i, c := range b {
		if strings.IndexByte(chars, c) >= 0 {
			return i
		}
	}
	return -1
}

// literal reads true, false or null.
func (d *decoder) literal(want string) error {
	if len(d.data)-d.pos < len(want) || string(d.data[d.pos:d.pos+len(want)]) != want {
		return d.syntax("invalid literal")
	}
	d.pos += len(want)
	return nil
}

// skip reads past one value of any shape, checking its syntax, with a
// stack of open containers rather than recursion.
func (d *decoder) skip() error {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	for {
		// A value.
		d.ws()
		if d.pos >= len(d.data) {
			return d.syntax("unexpected end")
		}
		switch c := d.data[d.pos]; {
		case c == '{' || c == '[':
			d.pos++
			d.ws()
			if d.pos < len(d.data) && d.data[d.pos] == closer(c) {
				d.pos++
				break // empty: a whole value
			}
			stack = append(stack, c)
			if c == '{' {
				if _, err := d.key(); err != nil {
					return err
				}
			}
			continue // its first value
		case c == '"':
			if _, _, err := d.str(); err != nil {
				return err
			}
		case c == 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if _, _, err := d.number(); err != nil {
				return err
			}
		default:
			return d.syntax("expected a value")
		}
		// After a value: a comma, or the ends of containers.
		for {
			if len(stack) == 0 {
				return nil
			}
			d.ws()
			if d.pos >= len(d.data) {
				return d.syntax("unexpected end")
			}
			c, top := d.data[d.pos], stack[len(stack)-1]
			if c == ',' {
				d.pos++
				if top == '{' {
					if _, err := d.key(); err != nil {
						return err
					}
				}
				break
			}
			if c != closer(top) {
				return d.syntax(fmt.Sprintf("expected , or %c", closer(top)))
			}
			d.pos++
			stack = stack[:len(stack)-1]
		}
	}
}

func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) syntax(what string) error {
	if d.pos < len(d.data) && what != "unexpected end" {
		what = fmt.Sprintf("%s, found %s", what, quoteByte(d.data[d.pos]))
	}
	return &MismatchError{Reason: fmt.Sprintf("invalid JSON at byte %d: %s", d.pos, what)}
}

func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// under puts a field's name in front of an error's path.
func under(err error, name string) error {
	if me, ok := err.(*MismatchError); ok {
		switch {
		case me.Path == "":
			me.Path = name
		case me.Path[0] == '[':
			me.Path = name + me.Path
		default:
			me.Path = name + "." + me.Path
		}
	}
	return err
}

// atIndex puts an array index in front of an error's path.
func atIndex(err error, i int) error {
	if me, ok := err.(*MismatchError); ok {
		idx := "[" + strconv.Itoa(i) + "]"
		switch {
		case me.Path == "":
			me.Path = idx
		case me.Path[0] == '[':
			me.Path = idx + me.Path
		default:
			me.Path = idx + "." + me.Path
		}
	}
	return err
}

// show gives a JSON value's text for a message: objects and arrays by
// their kind, scalars as written, shortened to about 40 bytes.
func show(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	const max = 40
	s := strings.ToValidUTF8(string(raw[:min(len(raw), max)]), "\uFFFD")
	if len(raw) > max {
		s += "…"
	}
	return s
}
