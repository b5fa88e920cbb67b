package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"
)

// payloadBytes is the size of the buffer record values are cut from: far
// larger than a zstd window, so values cut from it at random offsets do
// not compress against each other.
const payloadBytes = 64 << 20

// workload makes records: values cut from a shared buffer (random bytes
// or letters) and keys drawn from a distribution.
type workload struct {
	size    int
	payload []byte
	keys    [][]byte
	dist    string
}

func newWorkload(c Config) *workload {
	w := &workload{size: c.RecordSize, dist: c.Keys}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x666c6f65))
	n := max(payloadBytes, 4*c.RecordSize)
	w.payload = make([]byte, n)
	if c.Payload == "text" {
		// Words of a 1000-word vocabulary, Zipf-distributed like a
		// language's: text that repeats as logs and events do.
		vocab := make([]string, 1000)
		for i := range vocab {
			n := 2 + r.IntN(8)
			word := make([]byte, n)
			for j := range word {
				word[j] = 'a' + byte(r.IntN(26))
			}
			vocab[i] = string(word)
		}
		z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
		for i := 0; i < len(w.payload); {
			i += copy(w.payload[i:], vocab[z.Uint64()])
			if i < len(w.payload) {
				w.payload[i] = ' '
				i++
			}
		}
	} else {
		src := rand.NewChaCha8([32]byte{byte(r.Uint32())})
		src.Read(w.payload)
	}
	if c.Keys != "none" || len(c.Fleet) > 0 {
		w.makeKeys(c.KeySpace)
	}
	return w
}

// makeKeys draws keys from n distinct keys, unless it has keys already
// (a phase with keyed records in a run without them).
func (w *workload) makeKeys(n int) {
	if w.keys != nil {
		return
	}
	w.keys = make([][]byte, n)
	for i := range w.keys {
		w.keys[i] = fmt.Appendf(nil, "key-%08d", i)
	}
}

// gen is one producer's record source; not safe for concurrent use.
type gen struct {
	w    *workload
	dist string
	r    *rand.Rand
	zipf *rand.Zipf
}

// gen returns a record source with the run's key distribution.
func (w *workload) gen(seed uint64) *gen { return w.genKeys(seed, w.dist) }

// genKeys returns a record source whose keys follow dist (none, uniform
// or zipf).
func (w *workload) genKeys(seed uint64, dist string) *gen {
	g := &gen{w: w, dist: dist, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if dist == "zipf" {
		g.zipf = rand.NewZipf(g.r, 1.1, 1, uint64(len(w.keys)-1))
	}
	return g
}

// key returns the next record's key (nil for none).
func (g *gen) key() []byte {
	switch g.dist {
	case "uniform":
		return g.w.keys[g.r.IntN(len(g.w.keys))]
	case "zipf":
		return g.w.keys[g.zipf.Uint64()]
	}
	return nil
}

// value returns a value that shares the payload buffer: it must not be
// modified.
func (g *gen) value() []byte {
	off := g.r.IntN(len(g.w.payload) - g.w.size)
	return g.w.payload[off : off+g.w.size : off+g.w.size]
}

// stampedValue returns a new value whose first 8 bytes are the send time
// in Unix nanoseconds, for end-to-end latency.
func (g *gen) stampedValue(now time.Time) []byte {
	v := make([]byte, g.w.size)
	copy(v, g.value())
	binary.BigEndian.PutUint64(v, uint64(now.UnixNano()))
	return v
}

// sentAt reads the send time of a stamped value.
func sentAt(v []byte) (time.Time, bool) {
	if len(v) < 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}
