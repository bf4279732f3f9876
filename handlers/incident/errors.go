package incident

import (
	"errors"
	"fmt"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// Kind is what sort of refusal an Error is. Each front door answers a kind
// its own way (the HTTP API: 400, 404, 409, 422).
type Kind int

// The kinds of refusal.
const (
	// Invalid: the request itself is wrong (a field missing, too long, not
	// a severity); Error.Field names the field.
	Invalid Kind = iota + 1
	// NotFound: no incident with that id.
	NotFound
	// Conflict: the incident's state forbids the change (acknowledging a
	// resolved incident).
	Conflict
	// Unprocessable: well formed but against a rule (the same person in
	// both roles, an unknown drill scenario, an idempotency key reused).
	Unprocessable
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Unprocessable:
		return "unprocessable"
	}
	return "unknown"
}

// Error is a refusal of the service: nothing was written. Its message says
// what to fix, starting with the field when there is one.
type Error struct {
	Kind  Kind
	Field string // the request field at fault, when there is one
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// KindOf is the kind of err when it is (or wraps) an *Error, else 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// invalid refuses a field: the message starts with the field's name.
func invalid(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Field: field, Msg: field + ": " + fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &Error{Kind: Conflict, Msg: fmt.Sprintf(format, args...)}
}

func unprocessable(field, format string, args ...any) error {
	return &Error{Kind: Unprocessable, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// unknownIncident turns the store's not-found for an incident id into a
// NotFound naming the id asked for, cut short (a path can be long). An id
// that is not INC-<n> is refused by the store before any key is read. A
// read error of any other sort is returned as it is: it is never taken for
// "not found".
func unknownIncident(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Msg: fmt.Sprintf("unknown incident %q", integrations.Shorten(id, 64))}
	}
	return err
}

// unknownAction is unknownIncident for an action item id.
func unknownAction(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Msg: fmt.Sprintf("unknown action item %q", integrations.Shorten(id, 64))}
	}
	return err
}
