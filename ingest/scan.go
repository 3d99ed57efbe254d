package ingest

// shape is what scanBody measures of a body before it is decoded.
type shape struct {
	// events is the number of elements of a top-level array, or 1 for a
	// body holding any other value (0 for a blank one).
	events int
	// depth is the deepest nesting inside one event, counted from the event
	// object, which is level 1: {"type":"A","data":{"k":[1]}} is 3 deep.
	// The brackets of a top-level array do not count.
	depth int
}

// scanBody measures body in one pass, without allocating, so that a body of
// 80,000 tiny events is refused before 80,000 events are decoded. It does
// not validate: it follows strings (and their escapes) and brackets, and
// decoding judges the JSON afterwards. On valid JSON its figures are exact.
func scanBody(body []byte) shape {
	var (
		s        shape
		started  bool // the first value's first byte was seen
		array    bool // the body is an array
		depth    int  // brackets open at the current byte
		maxDepth int
		inString bool
		escaped  bool // the previous byte was a backslash inside a string
		inEvent  bool // inside a top-level array: an element has begun and no comma has ended it
	)
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		if !started {
			started = true
			array = c == '['
			if !array {
				s.events = 1
			}
		}
		if array && depth == 1 && !inEvent && c != ',' && c != ']' {
			inEvent = true
			s.events++
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth = max(depth-1, 0)
		case ',':
			if array && depth == 1 {
				inEvent = false
			}
		}
	}
	s.depth = maxDepth
	if array {
		s.depth = max(maxDepth-1, 0)
	}
	return s
}
