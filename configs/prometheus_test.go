package configs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/policy"
)

// The alerting rules on Responder itself, and their promtool unit tests.
var (
	rulesFile     = filepath.Join("prometheus", "responder-rules.yml")
	rulesTestFile = filepath.Join("prometheus", "responder-rules.test.yml")
)

// fatalT is the part of testing.T that promtool uses.
type fatalT interface {
	Helper()
	Fatalf(format string, args ...any)
}

// promtool runs Debian's promtool (package prometheus) with args, within
// a bound, and fails the test with its output when it fails, or when there
// is no promtool.
func promtool(t fatalT, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): `make deps` installs it (Debian package prometheus)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("promtool %s: no answer within 2m:\n%s", strings.Join(args, " "), out)
	}
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// promtool checks the rules (syntax, PromQL, templates) and runs their unit
// tests: each alert fires on what it is for and not on what it is not.
func TestPrometheusRules(t *testing.T) {
	promtool(t, "check", "rules", rulesFile)
	promtool(t, "test", "rules", rulesTestFile)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// Every alert is one an SRE can act on as it is: one group; a summary, a
// description and a runbook in docs/operations.md under the alert's own
// anchor; a severity that Responder's default policy maps to S2 or S3 (a
// value it does not know would fall to S4, recorded only); a for; and a
// unit test.
func TestPrometheusRulesAreComplete(t *testing.T) {
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	_, pol := mustLoad(t, "", configs.Overrides{})
	if len(rf.Groups) != 1 {
		t.Fatalf("%s: %d groups, want 1", rulesFile, len(rf.Groups))
	}
	seen := map[string]bool{}
	for _, r := range rf.Groups[0].Rules {
		if r.Alert == "" {
			t.Errorf("a rule without alert (expr %q): the file holds alerting rules only", r.Expr)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: two rules have this name", r.Alert)
		}
		seen[r.Alert] = true
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		want := "https://github.com/responder-sre/responder/blob/main/docs/operations.md#" + strings.ToLower(r.Alert)
		if got := r.Annotations["runbook_url"]; got != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
		}
		switch sev := pol.Classify(r.Labels).Severity; {
		case r.Labels["severity"] == "":
			t.Errorf("%s: no severity label", r.Alert)
		case sev != policy.S2 && sev != policy.S3:
			t.Errorf("%s: severity %q is %s under the default policy, want S2 or S3", r.Alert, r.Labels["severity"], sev)
		}
		if _, err := time.ParseDuration(r.For); err != nil {
			t.Errorf("%s: for %q: %v (every alert waits out a blip)", r.Alert, r.For, err)
		}
		if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
			t.Errorf("%s: no test in %s", r.Alert, rulesTestFile)
		}
	}
	if len(seen) == 0 {
		t.Errorf("%s: no alerts", rulesFile)
	}
}

// A missing promtool fails the checks (never skips them) and says how to
// get it.
func TestPromtoolMissingFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := exec.LookPath("promtool"); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("promtool still found with an empty PATH: %v", err)
	}
	var ft fakeT
	done := make(chan struct{})
	go func() {
		defer close(done)
		promtool(&ft, "check", "rules", rulesFile)
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, "make deps") {
		t.Errorf("without promtool: failed %v, message %q; want a failure naming make deps", ft.failed, ft.msg)
	}
}

// fakeT records a Fatalf and ends its goroutine, as testing.T does.
type fakeT struct {
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
