package records

import (
	"errors"
	"fmt"
)

// ErrTooLarge is wrapped by the per-item error of a user record that cannot
// fit in a Kinesis record even alone (data plus partition key over the
// limit).
var ErrTooLarge = errors.New("record too large")

// ErrMalformed is wrapped by every decoding error of the native processors:
// the message after it says what is wrong with the input.
var ErrMalformed = errors.New("malformed input")

// ErrUnsupported is wrapped by the per-item error of an item a serializer or
// aggregator cannot represent (a non-string item for the string serializer,
// a newline inside a JSON-lines row, a value JSON cannot encode).
var ErrUnsupported = errors.New("unsupported item")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

func tooLarge(size, limit int) error {
	return fmt.Errorf("%w: %d bytes (data plus partition key, framing included) exceed the limit of %d", ErrTooLarge, size, limit)
}

// itemErrs collects per-item errors and returns nil when there are none.
type itemErrs ItemErrors

func (e *itemErrs) add(i int, err error) { *e = append(*e, ItemError{Index: i, Err: err}) }

func (e itemErrs) err() error {
	if len(e) == 0 {
		return nil
	}
	return ItemErrors(e)
}
