package fault

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// The export checker judges the Iceberg table the exporter wrote of the
// transactional topic against that topic's final read_committed read
// (TxnHistory.In): the table must hold each committed record exactly once,
// as the topic has it, and nothing else: no record of an aborted
// transaction, no duplicate, nothing the topic does not hold there. Like
// Check and CheckTxns, it is pure; export_checker_test.go builds tables
// that must fail.

// ExportRow is a row of the exported table, as read from its Parquet
// files.
type ExportRow struct {
	Topic     string // kafka.topic
	Partition int32  // kafka.partition
	Offset    int64  // kafka.offset
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value
}

// ExportTable is what was read of the exported table: its rows, and of
// its metadata the offsets its snapshots record.
type ExportTable struct {
	Rows []ExportRow
	// Offsets is the floe.offsets of each snapshot that records them, the
	// current one's ancestors first (the first offset of each partition
	// not in the table after that snapshot).
	Offsets []map[int32]int64
	// TotalRecords is the current snapshot's total-records, -1 if it has
	// none.
	TotalRecords int64
}

// ExportResult counts what CheckExport found. Only the counts under "must
// be zero" are failures.
type ExportResult struct {
	Expected  int // committed records the read_committed read holds
	Rows      int // rows in the table
	Snapshots int // snapshots that record offsets

	// Must be zero.
	Missing     int // committed records the table does not hold
	Duplicated  int // extra rows of a (partition, offset)
	AbortedRows int // rows of records of transactions that did not commit
	Phantom     int // rows at a (partition, offset) where the topic holds no committed record, of no record sent
	Mismatched  int // rows whose topic, key or value is not the record's
	OffsetsBad  int // snapshots whose offsets go back from their parent's, or past the topic's end
	CountBad    int // the current snapshot's total-records not the rows read

	Problems []string
}

func (r *ExportResult) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// OK reports whether the table is exactly the committed records.
func (r ExportResult) OK() bool {
	return r.Missing+r.Duplicated+r.AbortedRows+r.Phantom+r.Mismatched+r.OffsetsBad+r.CountBad == 0
}

// String is the counts on one line.
func (r ExportResult) String() string {
	return fmt.Sprintf("export_expected=%d export_rows=%d export_snapshots=%d export_missing=%d export_duplicated=%d export_aborted=%d export_phantom=%d export_mismatched=%d export_offsets_bad=%d export_count_bad=%d",
		r.Expected, r.Rows, r.Snapshots, r.Missing, r.Duplicated, r.AbortedRows, r.Phantom, r.Mismatched, r.OffsetsBad, r.CountBad)
}

// CheckExport judges tbl, the table exported from topic, against h: its
// transactions (h.Txns) and the topic read read_committed from its start
// to its end (h.In, h.InEnd). value gives the value a record of a given ID
// was sent with (nil: only the ID a value starts with is compared); the
// records have no key.
func CheckExport(h *TxnHistory, topic string, value func(id string) []byte, tbl ExportTable) ExportResult {
	var r ExportResult
	want := map[place]string{}
	committed := map[string]bool{}
	for _, p := range sortedParts(h.In) {
		for _, rd := range h.In[p] {
			if rd.Marker == "" {
				want[place{p, rd.Offset}] = rd.ID
				committed[rd.ID] = true
			}
		}
	}
	r.Expected = len(want)
	sent := map[string]*Txn{}
	for i := range h.Txns {
		for _, rec := range h.Txns[i].Records {
			sent[rec.ID] = &h.Txns[i]
		}
	}

	seen := map[place]int{}
	for _, row := range tbl.Rows {
		r.Rows++
		pl := place{row.Partition, row.Offset}
		if seen[pl]++; seen[pl] > 1 {
			r.Duplicated++
			r.problem("the table holds partition %d offset %d %d times", pl.partition, pl.offset, seen[pl])
			continue
		}
		id := payloadID(row.Value)
		wantID, ok := want[pl]
		switch {
		case !ok && sent[id] != nil && !committed[id]:
			t := sent[id]
			r.AbortedRows++
			r.problem("the table holds %s at %d/%d, of transaction %s (%s: %s), which did not commit", id, pl.partition, pl.offset, t.ID, t.Outcome, t.End)
		case !ok:
			r.Phantom++
			r.problem("the table holds a row at %d/%d (value %q), where the topic read committed holds no record", pl.partition, pl.offset, short(row.Value))
		case id != wantID:
			r.Mismatched++
			r.problem("the table holds %q at %d/%d, where the topic read committed holds %s", id, pl.partition, pl.offset, wantID)
		case row.Topic != topic:
			r.Mismatched++
			r.problem("the row of %s at %d/%d names topic %q, not %q", id, pl.partition, pl.offset, row.Topic, topic)
		case row.Key != nil:
			r.Mismatched++
			r.problem("the row of %s at %d/%d has key %q; it was sent without one", id, pl.partition, pl.offset, short(row.Key))
		case value != nil && !bytes.Equal(row.Value, value(id)):
			r.Mismatched++
			r.problem("the row of %s at %d/%d has value %q, not the %d bytes sent", id, pl.partition, pl.offset, short(row.Value), len(value(id)))
		}
	}
	byPart := map[int32][]int64{}
	for _, pl := range slices.SortedFunc(maps.Keys(want), func(a, b place) int {
		if a.partition != b.partition {
			return int(a.partition - b.partition)
		}
		return int(a.offset - b.offset)
	}) {
		if seen[pl] == 0 {
			r.Missing++
			byPart[pl.partition] = append(byPart[pl.partition], pl.offset)
		}
	}
	for _, p := range sortedParts(byPart) {
		r.problem("partition %d: the table lacks the committed records at %s", p, offsetList(byPart[p]))
	}

	// Each commit's offsets move forward from its parent's, and never
	// past the end of the topic.
	for i, offs := range tbl.Offsets {
		r.Snapshots++
		for _, p := range sortedParts(offs) {
			if end, ok := h.InEnd[p]; !ok || offs[p] > end {
				r.OffsetsBad++
				r.problem("snapshot %d of %d records partition %d's next offset as %d, past the topic's end %d", i+1, len(tbl.Offsets), p, offs[p], end)
			}
			if i > 0 && offs[p] < tbl.Offsets[i-1][p] {
				r.OffsetsBad++
				r.problem("snapshot %d of %d records partition %d's next offset as %d, back from its parent's %d", i+1, len(tbl.Offsets), p, offs[p], tbl.Offsets[i-1][p])
			}
		}
		if i > 0 {
			for p := range tbl.Offsets[i-1] {
				if _, ok := offs[p]; !ok {
					r.OffsetsBad++
					r.problem("snapshot %d of %d records no offset for partition %d; its parent did", i+1, len(tbl.Offsets), p)
				}
			}
		}
	}
	if tbl.TotalRecords != int64(len(tbl.Rows)) {
		r.CountBad++
		r.problem("the current snapshot counts %d records (total-records), its data files hold %d rows", tbl.TotalRecords, len(tbl.Rows))
	}
	return r
}

// short is a value for a problem line.
func short(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
