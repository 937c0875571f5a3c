package host

import (
	"bytes"
	"log/slog"
)

// lineWriter sends a guest's stdout and stderr to the plugin's logger, one
// record per line, and drops what exceeds the per-call byte budget so that
// a guest flooding its output cannot flood the host's logs.
type lineWriter struct {
	p       *Plugin
	id      uint64
	buf     []byte
	used    int
	dropped int
	// fatal is the first line of this call's output that looks like a crash
	// report ("panic: ...", "fatal error: ..."), quoted in trap errors.
	fatal string
}

func newLineWriter(p *Plugin, id uint64) *lineWriter { return &lineWriter{p: p, id: id} }

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	if room := w.p.cfg.maxOutputBytes - w.used; len(b) > room {
		w.dropped += len(b) - max(room, 0)
		b = b[:max(room, 0)]
	}
	w.used += len(b)
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 4<<10 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	return n, nil
}

func (w *lineWriter) emit(line []byte) {
	if w.fatal == "" && (bytes.HasPrefix(line, []byte("panic: ")) || bytes.HasPrefix(line, []byte("fatal error: "))) {
		w.fatal = string(line[:min(len(line), 200)])
	}
	w.p.log.Info(string(line), "source", "guest output", "instance", w.id)
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

// endCall flushes a partial line and reports dropped output, then resets
// the budget for the next call.
func (w *lineWriter) endCall() {
	w.flush()
	if w.dropped > 0 {
		w.p.log.Warn("guest output over the per-call limit was dropped", slog.Int("dropped_bytes", w.dropped), slog.Int("limit", w.p.cfg.maxOutputBytes), slog.Uint64("instance", w.id))
	}
	w.used, w.dropped, w.fatal = 0, 0, ""
}
