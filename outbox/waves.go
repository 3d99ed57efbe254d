package outbox

// waves orders a scan's rows for publishing: wave k holds the k-th row of
// every aggregate, so no two rows of one aggregate are in flight at once and
// a row goes out only after its aggregate's previous row was confirmed. Rows
// without an aggregate have no order to keep: they all go in the first wave.
// Rows come in scan order, which is each aggregate's order.
func waves(rows []row) [][]int {
	var out [][]int
	depth := map[string]int{} // aggregate → rows of it placed so far
	for i, r := range rows {
		k := 0
		if a := r.ev.AggregateID; a != "" {
			k = depth[a]
			depth[a] = k + 1
		}
		if k == len(out) {
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}
