package exporter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// A topic's table follows its value schema as Iceberg schema evolution
// allows, so a schema that grows does not stop the export:
//
//   - a field the schema gains becomes a new optional column (nested
//     fields within their struct), placed before _dead_letter; the rows
//     already in the table read it as null;
//   - a field the schema loses keeps its column, null in rows written
//     since;
//   - a changed value format (binary to json or back) adds the other
//     format's columns the same way;
//   - a field whose type changes in a way Iceberg cannot promote (string
//     to long, a struct to a list, ...) is refused, and the topic is
//     exported no further until the schema changes back or
//     floe.iceberg.table names a new table.
//
// Only the topic's own table evolves (its floe.topic-id property): a
// table another topic created must already have the columns.

// evolve adds the layout's columns the topic's table lacks, in a commit
// of its own (a schema change adds no snapshot, so where the export
// resumes is unchanged). It returns the table as committed, or as it was
// when nothing is missing.
func (e *Exporter) evolve(ctx context.Context, topic string, tbl *table.Table, lay *layout) (*table.Table, error) {
	have := tbl.Schema()
	var added []string
	for _, f := range lay.schema.Fields() {
		if _, ok := have.FindFieldByName(f.Name); !ok {
			added = append(added, f.Name)
		}
	}
	// An update runs its changes each time it is applied: one to see
	// what the schema would become, another to commit it.
	update := func(txn *table.Transaction) *table.UpdateSchema {
		us := txn.UpdateSchema(true, false).UnionByNameWith(lay.schema)
		if _, ok := have.FindFieldByName(colDeadLetter); ok {
			for _, name := range added {
				us = us.MoveBefore([]string{name}, []string{colDeadLetter})
			}
		}
		return us
	}
	next, err := update(tbl.NewTransaction()).Apply()
	if err != nil {
		return nil, fmt.Errorf("the topic's value schema cannot be applied to table %s (%v): change it back, or export to a new table (floe.iceberg.table)", strings.Join(tbl.Identifier(), "."), err)
	}
	if next.Equals(have) {
		return tbl, nil
	}
	txn := tbl.NewTransaction()
	if err := update(txn).Commit(); err != nil {
		return nil, fmt.Errorf("evolving table %s: %w", strings.Join(tbl.Identifier(), "."), err)
	}
	evolved, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("committing the evolved schema of table %s: %w", strings.Join(tbl.Identifier(), "."), err)
	}
	e.log.Info("evolved the table's schema to the topic's", "topic", topic, "table", strings.Join(tbl.Identifier(), "."),
		"schema_id", evolved.Schema().ID, "new_columns", added)
	return evolved, nil
}

// writeSchema is the layout's schema with the table's field IDs: the
// columns rows are written with, by name, in the layout's order. Columns
// of the table the layout lacks (fields the value schema lost) are left
// out and read as null. It fails when a layout column is missing from the
// table or has another type there.
func writeSchema(tbl *iceberg.Schema, lay *iceberg.Schema) (*iceberg.Schema, error) {
	fields, err := projectFields(tbl.Fields(), lay.Fields(), "")
	if err != nil {
		return nil, err
	}
	return iceberg.NewSchema(tbl.ID, fields...), nil
}

func projectFields(have, want []iceberg.NestedField, prefix string) ([]iceberg.NestedField, error) {
	out := make([]iceberg.NestedField, 0, len(want))
	for _, w := range want {
		i := slices.IndexFunc(have, func(h iceberg.NestedField) bool { return h.Name == w.Name })
		if i < 0 {
			return nil, fmt.Errorf("column %s%s is not in the table", prefix, w.Name)
		}
		h := have[i]
		typ, err := projectType(h.Type, w.Type, prefix+w.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, iceberg.NestedField{ID: h.ID, Name: h.Name, Type: typ, Required: h.Required, Doc: h.Doc})
	}
	return out, nil
}

func projectType(have, want iceberg.Type, path string) (iceberg.Type, error) {
	switch wt := want.(type) {
	case *iceberg.StructType:
		ht, ok := have.(*iceberg.StructType)
		if !ok {
			return nil, fmt.Errorf("column %s is %s in the table, not a struct", path, have)
		}
		fields, err := projectFields(ht.FieldList, wt.FieldList, path+".")
		if err != nil {
			return nil, err
		}
		return &iceberg.StructType{FieldList: fields}, nil
	case *iceberg.ListType:
		ht, ok := have.(*iceberg.ListType)
		if !ok {
			return nil, fmt.Errorf("column %s is %s in the table, not a list", path, have)
		}
		elem, err := projectType(ht.Element, wt.Element, path+".element")
		if err != nil {
			return nil, err
		}
		return &iceberg.ListType{ElementID: ht.ElementID, Element: elem, ElementRequired: ht.ElementRequired}, nil
	}
	if !have.Equals(want) {
		return nil, fmt.Errorf("column %s is %s in the table, not %s", path, have, want)
	}
	return have, nil
}
