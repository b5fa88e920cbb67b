package agent

import (
	"sync"
	"time"
)

// fetchReaders counts the connections that lately received record
// batches in a fetch response: the readers sharing the agent's fetch
// memory. A fetch's share of that memory is divided among them as well
// as among the fetches holding some of it at the moment (fetchHolding).
// Fetches holding memory alone undercount: the consumers of a group
// reading thousands of partitions send their fetches together, and the
// first to arrive, finding the budget free, would take most of it while
// the others wait for its response to be written. Counting who read
// lately gives each an equal share from the first of them, while a
// consumer reading alone still gets the whole budget.
type fetchReaders struct {
	mu     sync.Mutex
	window time.Duration
	last   map[*conn]time.Time
	pruned time.Time
}

// fetchReaderWindow is how long a connection that received batches
// counts as a reader.
const fetchReaderWindow = time.Second

func newFetchReaders(window time.Duration) *fetchReaders {
	return &fetchReaders{window: window, last: map[*conn]time.Time{}}
}

// read notes that c received batches at now.
func (r *fetchReaders) read(c *conn, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[c] = now
}

// count is the number of readers at now, counting c whether or not it
// read lately. Connections are forgotten once they have not read for a
// window, looked at once per window, so a reader counts for one to two
// windows after its last batches and counting costs no more with
// thousands of connections.
func (r *fetchReaders) count(c *conn, now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.pruned) >= r.window {
		r.pruned = now
		for k, t := range r.last {
			if now.Sub(t) >= r.window {
				delete(r.last, k)
			}
		}
	}
	n := len(r.last)
	if _, ok := r.last[c]; !ok {
		n++
	}
	return n
}

// forget drops c, closed.
func (r *fetchReaders) forget(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, c)
}
