package configs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/policy"
)

// FuzzParse feeds arbitrary bytes to Parse and Validate: they must never
// panic, must give the same answer twice, and a config they accept must
// build a policy that can be used.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "example.yml", "default.yml")
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "null", "[]", "---\n---\n", "a: &a [*a]", "policy: &p {rules: *p}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		first := loadBytes(t, data)
		if second := loadBytes(t, data); second != first {
			t.Fatalf("two loads of one input differ:\n%s\n---\n%s", first, second)
		}
	})
}

// loadBytes does what Load does with data and describes the outcome.
func loadBytes(t *testing.T, data []byte) string {
	t.Helper()
	cfg, parseErr := configs.Parse(data)
	if cfg == nil {
		if parseErr == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		return "parse: " + parseErr.Error()
	}
	// Only the token files of testdata may be read: a fuzzed path could
	// name /dev/zero.
	for i := range cfg.Auth.Tokens {
		switch f := cfg.Auth.Tokens[i].TokenFile; f {
		case "", "testdata/example-token", "testdata/empty-token":
		default:
			cfg.Auth.Tokens[i].TokenFile = "testdata/no-such-token-file"
		}
	}
	validateErr := cfg.Validate()
	if parseErr == nil && validateErr == nil {
		pol, err := cfg.BuildPolicy()
		if err != nil {
			t.Fatalf("Validate accepted the config, BuildPolicy did not: %v", err)
		}
		usePolicy(t, pol)
	}
	return fmt.Sprintf("parse: %v\nvalidate: %v", parseErr, validateErr)
}

func usePolicy(t *testing.T, pol *policy.Policy) {
	t.Helper()
	lbls := map[string]string{"severity": "critical", "env": "prod", "service": "db"}
	if s := pol.Classify(lbls).Severity; !s.Valid() {
		t.Fatalf("Classify gave severity %v", s)
	}
	if s := pol.ClassifyOpsGenie("P1", lbls).Severity; !s.Valid() {
		t.Fatalf("ClassifyOpsGenie gave severity %v", s)
	}
	for _, s := range policy.Severities() {
		if _, ok := pol.Process[s]; !ok {
			t.Fatalf("no process for %v", s)
		}
	}
	for _, now := range []time.Time{
		time.Date(2025, 1, 6, 8, 30, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 0, 0, time.UTC),
		time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC),
	} {
		pol.OutOfHours(now)
	}
}
