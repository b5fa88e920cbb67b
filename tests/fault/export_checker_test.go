package fault

import (
	"maps"
	"slices"
	"testing"
)

// exportValue is what the histories' records are sent with.
func exportValue(id string) []byte { return []byte(id + " pad") }

// exportedTable is the table a correct export of h holds: every record
// h.In holds, once, with its value, in two commits (the first up to
// offset 3 of each partition).
func exportedTable(h *TxnHistory) ExportTable {
	var rows []ExportRow
	for _, p := range sortedParts(h.In) {
		for _, rd := range h.In[p] {
			if rd.Marker == "" {
				rows = append(rows, ExportRow{Topic: txnTopic, Partition: p, Offset: rd.Offset, Value: exportValue(rd.ID)})
			}
		}
	}
	first := map[int32]int64{}
	for p, end := range h.InEnd {
		first[p] = min(end, 3)
	}
	return ExportTable{Rows: rows, Offsets: []map[int32]int64{first, maps.Clone(h.InEnd)}, TotalRecords: int64(len(rows))}
}

func TestExportCheckerAcceptsExactlyTheCommittedRecords(t *testing.T) {
	h, _ := goodTxnHistory()
	tbl := exportedTable(h)
	// Row order does not matter: data files come in any order.
	slices.Reverse(tbl.Rows)
	r := CheckExport(h, txnTopic, exportValue, tbl)
	if !r.OK() || r.Expected != 6 || r.Rows != 6 || r.Snapshots != 2 {
		t.Fatalf("%s\n%v", r, r.Problems)
	}
}

func TestExportCheckerCatchesEachViolation(t *testing.T) {
	// add puts a row in the table, counted in total-records as a commit
	// would count it.
	add := func(tbl *ExportTable, row ExportRow) {
		tbl.Rows = append(tbl.Rows, row)
		tbl.TotalRecords++
	}
	for _, tc := range []struct {
		name  string
		edit  func(h *TxnHistory, tbl *ExportTable)
		count func(r ExportResult) int
	}{
		{"a committed record exported twice (a commit redone after a crash)",
			func(h *TxnHistory, tbl *ExportTable) { add(tbl, tbl.Rows[2]) },
			func(r ExportResult) int { return r.Duplicated }},
		{"a committed record missing (offsets skipped on resume)",
			func(h *TxnHistory, tbl *ExportTable) {
				tbl.Rows = slices.Delete(tbl.Rows, 3, 4)
				tbl.TotalRecords--
			},
			func(r ExportResult) int { return r.Missing }},
		{"a record of an aborted transaction exported",
			func(h *TxnHistory, tbl *ExportTable) {
				rd := readOf(h, "t0-1-1")
				add(tbl, ExportRow{Topic: txnTopic, Partition: rd.Partition, Offset: rd.Offset, Value: exportValue(rd.ID)})
			},
			func(r ExportResult) int { return r.AbortedRows }},
		{"a record of an unknown transaction that did not commit exported",
			func(h *TxnHistory, tbl *ExportTable) {
				rd := readOf(h, "t1-1-0")
				add(tbl, ExportRow{Topic: txnTopic, Partition: rd.Partition, Offset: rd.Offset, Value: exportValue(rd.ID)})
			},
			func(r ExportResult) int { return r.AbortedRows }},
		{"a row at a transaction marker's offset",
			func(h *TxnHistory, tbl *ExportTable) {
				m := h.In[0][slices.IndexFunc(h.In[0], func(rd TxnRead) bool { return rd.Marker != "" })]
				add(tbl, ExportRow{Topic: txnTopic, Partition: 0, Offset: m.Offset, Value: []byte("marker")})
			},
			func(r ExportResult) int { return r.Phantom }},
		{"a record at another record's offset",
			func(h *TxnHistory, tbl *ExportTable) { tbl.Rows[0].Value = tbl.Rows[1].Value },
			func(r ExportResult) int { return r.Mismatched }},
		{"a value cut short",
			func(h *TxnHistory, tbl *ExportTable) {
				tbl.Rows[1].Value = tbl.Rows[1].Value[:len(tbl.Rows[1].Value)-1]
			},
			func(r ExportResult) int { return r.Mismatched }},
		{"a key where the record had none",
			func(h *TxnHistory, tbl *ExportTable) { tbl.Rows[1].Key = []byte{} },
			func(r ExportResult) int { return r.Mismatched }},
		{"another topic's row",
			func(h *TxnHistory, tbl *ExportTable) { tbl.Rows[4].Topic = outTopic },
			func(r ExportResult) int { return r.Mismatched }},
		{"a snapshot whose offsets go back",
			func(h *TxnHistory, tbl *ExportTable) {
				last := maps.Clone(tbl.Offsets[1])
				last[1]--
				tbl.Offsets = append(tbl.Offsets, last)
			},
			func(r ExportResult) int { return r.OffsetsBad }},
		{"a snapshot whose offsets are past the topic's end",
			func(h *TxnHistory, tbl *ExportTable) { tbl.Offsets[1][0]++ },
			func(r ExportResult) int { return r.OffsetsBad }},
		{"a snapshot that drops a partition",
			func(h *TxnHistory, tbl *ExportTable) { delete(tbl.Offsets[1], 0) },
			func(r ExportResult) int { return r.OffsetsBad }},
		{"total-records not the rows the data files hold",
			func(h *TxnHistory, tbl *ExportTable) { tbl.TotalRecords++ },
			func(r ExportResult) int { return r.CountBad }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := goodTxnHistory()
			tbl := exportedTable(h)
			tc.edit(h, &tbl)
			r := CheckExport(h, txnTopic, exportValue, tbl)
			if r.OK() || tc.count(r) != 1 || len(r.Problems) != 1 {
				t.Fatalf("want exactly one violation, of its kind: %s\n%v", r, r.Problems)
			}
			t.Logf("%s: %s", r, r.Problems[0])
		})
	}
}
