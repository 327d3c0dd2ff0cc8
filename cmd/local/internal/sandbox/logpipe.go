package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logSink receives whole lines: the function's output and the sandbox's own
// START/END/REPORT lines. It writes each line with one Write to out and, while
// an invocation captures, appends it to the capture buffer too.
type logSink struct {
	mu      sync.Mutex
	out     io.Writer
	capture *bytes.Buffer
}

func (s *logSink) line(b []byte) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(append(make([]byte, 0, len(b)+1), b...), '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Write(b) //nolint:errcheck // logging is best effort
	if s.capture != nil {
		s.capture.Write(b)
	}
}

func (s *logSink) printf(format string, args ...any) {
	s.line([]byte(fmt.Sprintf(format, args...)))
}

func (s *logSink) startCapture() {
	s.mu.Lock()
	s.capture = &bytes.Buffer{}
	s.mu.Unlock()
}

func (s *logSink) stopCapture() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.capture
	s.capture = nil
	if b == nil {
		return nil
	}
	return b.Bytes()
}

// maxLine bounds one log line; longer output is passed on in pieces.
const maxLine = 256 * 1024

// drainMarker brackets the sequence number the sandbox writes into the
// function's output pipe: the pipe is FIFO, so when the reader meets the
// marker, everything the function wrote before it has been logged.
const drainMarker = "\x00ucs-local-drain\x00"

// logPipe is the pipe the child's stdout and stderr both write to.
type logPipe struct {
	r, w    *os.File
	sink    *logSink
	drained chan uint64
	seq     uint64
	done    chan struct{} // closed when the reader met EOF
}

func newLogPipe(sink *logSink) (*logPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: log pipe: %w", err)
	}
	p := &logPipe{r: r, w: w, sink: sink, drained: make(chan uint64, 1), done: make(chan struct{})}
	go p.read()
	return p, nil
}

func (p *logPipe) read() {
	defer close(p.done)
	defer p.r.Close()
	br := bufio.NewReaderSize(p.r, maxLine)
	var pending []byte
	for {
		line, err := br.ReadSlice('\n')
		if i := bytes.Index(line, []byte(drainMarker)); i >= 0 {
			// The marker may follow a partial line of the function's: keep that
			// part pending so the line is logged whole once it ends.
			pending = append(pending, line[:i]...)
			var seq uint64
			fmt.Sscanf(string(line[i+len(drainMarker):]), "%d", &seq) //nolint:errcheck // we wrote it
			select {
			case p.drained <- seq:
			default:
				select { // replace a stale number nobody waits for
				case <-p.drained:
				default:
				}
				p.drained <- seq
			}
			continue
		}
		if len(line) > 0 && (err == nil || err == bufio.ErrBufferFull) {
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = nil
			}
			p.sink.line(bytes.TrimRight(line, "\r\n"))
			continue
		}
		if err != nil {
			if rest := append(pending, line...); len(rest) > 0 {
				p.sink.line(rest)
			}
			return
		}
	}
}

// drain waits (up to wait) until everything written to the pipe so far has
// been logged.
func (p *logPipe) drain(wait time.Duration) {
	p.seq++
	if _, err := fmt.Fprintf(p.w, "%s%d\n", drainMarker, p.seq); err != nil {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case got := <-p.drained:
			if got >= p.seq {
				return
			}
		case <-p.done:
			return
		case <-timer.C:
			return
		}
	}
}

// closeWriter closes the sandbox's copy of the write end, so the reader
// meets EOF once the process (and anything it started) is gone.
func (p *logPipe) closeWriter() { p.w.Close() }
