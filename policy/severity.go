// Package policy holds Responder's pure incident rules: how an alert's labels
// map to a severity, when business hours are, and what process each severity
// runs. Nothing here reads a clock, a file or the network; callers pass `now`.
package policy

import (
	"fmt"
	"strings"
)

// Severity is an incident severity. S1 is the most severe; a lower number
// always means more severe.
type Severity int

// The four severities of the incident process.
const (
	S1 Severity = 1 // production customer systems are non-functional
	S2 Severity = 2 // severe loss of service, no acceptable workaround
	S3 Severity = 3 // minor loss of service, may need a workaround
	S4 Severity = 4 // anything else; normally recorded only
)

// Severities lists every valid severity, most severe first.
func Severities() []Severity { return []Severity{S1, S2, S3, S4} }

// ParseSeverity accepts "S1".."S4" (case-insensitive).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "S1":
		return S1, nil
	case "S2":
		return S2, nil
	case "S3":
		return S3, nil
	case "S4":
		return S4, nil
	}
	return 0, fmt.Errorf("unknown severity %q: want one of S1, S2, S3, S4", s)
}

// Valid reports whether s is one of S1..S4.
func (s Severity) Valid() bool { return s >= S1 && s <= S4 }

// MoreSevereThan reports whether s outranks o.
func (s Severity) MoreSevereThan(o Severity) bool { return s.Valid() && (!o.Valid() || s < o) }

func (s Severity) String() string {
	if !s.Valid() {
		return fmt.Sprintf("Severity(%d)", int(s))
	}
	return fmt.Sprintf("S%d", int(s))
}

// MarshalText writes "S1".."S4".
func (s Severity) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads "S1".."S4".
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
