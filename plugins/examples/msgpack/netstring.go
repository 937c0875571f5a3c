package main

import (
	"errors"
	"fmt"
	"strconv"
)

// netstringOverhead is the framing size of a netstring holding n bytes:
// decimal length, ':' and ','.
func netstringOverhead(n int) int { return len(strconv.Itoa(n)) + 2 }

func appendNetstring(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, ':')
	dst = append(dst, b...)
	return append(dst, ',')
}

// splitNetstrings parses a concatenation of netstrings, checking every
// length, colon and trailing comma.
func splitNetstrings(b []byte, each func(item []byte)) error {
	i := 0
	for i < len(b) {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i {
			return fmt.Errorf("netstring at byte %d: expected a decimal length", i)
		}
		if j-i > 1 && b[i] == '0' {
			return fmt.Errorf("netstring at byte %d: length has a leading zero", i)
		}
		if j-i > 10 {
			return fmt.Errorf("netstring at byte %d: length too long", i)
		}
		n, err := strconv.Atoi(string(b[i:j]))
		if err != nil {
			return fmt.Errorf("netstring at byte %d: %w", i, err)
		}
		if j >= len(b) || b[j] != ':' {
			return fmt.Errorf("netstring at byte %d: expected ':' after the length", j)
		}
		start := j + 1
		end := start + n
		if n >= len(b)-start { // the item and its ',' must fit
			return fmt.Errorf("netstring at byte %d: length %d runs past the end (%d bytes)", i, n, len(b))
		}
		if b[end] != ',' {
			return fmt.Errorf("netstring at byte %d: missing trailing ','", end)
		}
		each(b[start:end:end])
		i = end + 1
	}
	if len(b) == 0 {
		return errors.New("empty record holds no netstrings")
	}
	return nil
}
