package valueschema

import (
	"encoding/json"
	"testing"
)

// benchSchema and benchValue are a typical record: 10 fields, about 300
// bytes.
const benchSchema = `{
	"type": "object",
	"required": ["id", "user", "created"],
	"properties": {
		"id": {"type": "integer"},
		"user": {"type": "string"},
		"email": {"type": "string", "format": "email"},
		"age": {"type": "integer"},
		"score": {"type": "number"},
		"active": {"type": "boolean"},
		"created": {"type": "string", "format": "date-time"},
		"birthday": {"type": ["string", "null"], "format": "date"},
		"tags": {"type": "array", "items": {"type": "string"}},
		"address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}
	}
}`

const benchValue = `{"id":1234567890,"user":"ann.example","email":"ann@example.com","age":41,"score":97.25,"active":true,` +
	`"created":"2024-05-01T12:34:56.789012Z","birthday":"1983-02-11","tags":["alpha","beta","gamma"],` +
	`"address":{"city":"Lisbon","zip":"1100-148"},"source":{"app":"checkout","version":"3.14.1","region":"eu-west-1"}}`

func BenchmarkDecode(b *testing.B) {
	f := mustParse(b, benchSchema)
	value := []byte(benchValue)
	if _, err := f.Decode(value); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Decode(value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEncodingJSON is the same record through encoding/json into
// map[string]any, which checks nothing, for comparison.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	value := []byte(benchValue)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(value, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSONSchema(b *testing.B) {
	text := []byte(orderSchema)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSONSchema(text); err != nil {
			b.Fatal(err)
		}
	}
}
