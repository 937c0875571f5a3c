package main

import (
	"io"
	"log/slog"
	"os"
)

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newLogger builds the worker's logger on stderr: text on a terminal, JSON
// otherwise, unless log_format says which.
func (c *cli) newLogger(cfg *config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.str("log_level")))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.str("log_format")
	if format == "auto" {
		format = "json"
		if isTerminal(c.stderr) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(c.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(c.stderr, opts))
}
