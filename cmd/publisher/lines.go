package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errLineTooLong: a line over the limit, skipped.
var errLineTooLong = errors.New("line too long")

// line is one line of input: its 1-based number and its text without the
// line break, or why it could not be read.
type line struct {
	n    int
	text []byte
	err  error
}

// readLines sends the lines of in to out until the end of in, a read error,
// or quit. A line over max bytes is sent as errLineTooLong and skipped.
func readLines(in io.Reader, max int, out chan<- line, quit <-chan struct{}) {
	defer close(out)
	lr := lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
	for {
		text, err := lr.next()
		if err == io.EOF {
			return
		}
		select {
		case out <- line{n: lr.n, text: text, err: err}:
		case <-quit:
			return
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			return
		}
	}
}

// lineReader splits input into lines of at most max bytes. Unlike
// bufio.Scanner it keeps going after a line that is too long.
type lineReader struct {
	r   *bufio.Reader
	max int
	n   int // number of the line last read
}

// next returns the next line without its "\n" or "\r\n", in a new slice the
// caller may keep. It returns io.EOF at the end.
func (l *lineReader) next() ([]byte, error) {
	l.n++
	var text []byte
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			text = append(text, chunk...)
			// +2: the line break does not count.
			if len(text) > l.max+2 {
				tooLong, text = true, nil
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(text) == 0 && !tooLong:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		text = bytes.TrimSuffix(text, []byte("\n"))
		text = bytes.TrimSuffix(text, []byte("\r"))
		if tooLong || len(text) > l.max {
			return nil, fmt.Errorf("%w: longer than %d bytes; not published", errLineTooLong, l.max)
		}
		return text, nil
	}
}
