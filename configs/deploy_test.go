package configs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/responder-sre/responder/configs"
)

// The deployment files: the systemd units, the Kubernetes manifests and the
// Dockerfile. Nothing here starts systemd, a cluster or a Docker engine; the
// files are checked for what they promise: systemd-analyze's verdict, the
// sandboxing and security settings by name, the config each manifest carries
// through the real loader, and the lines of the Dockerfile that make the
// image static, non-root and the binary.

const (
	systemdDir    = "systemd"
	installedBin  = "/usr/local/bin/responder"
	installedConf = "/etc/responder/config.yml"
)

// unitFile is a parsed systemd unit: section -> key -> every assignment in
// order (an empty assignment is kept: it resets a list).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, file string) unitFile {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	var pending string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			pending += more + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a key=value line in a section: %q", file, n+1, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	return u
}

// one is the single value of key in section; the test fails when it is set
// more than once or not at all.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	vs, ok := u[section][key]
	if !ok {
		t.Errorf("[%s] %s= is missing", section, key)
		return ""
	}
	if len(vs) != 1 {
		t.Errorf("[%s] %s= is set %d times (%q): want once", section, key, len(vs), vs)
	}
	return vs[len(vs)-1]
}

// sandbox is what every unit that runs the binary must keep, whatever else
// changes: the directive and its value.
var sandbox = []struct{ key, want string }{
	{"ProtectSystem", "strict"},
	{"ProtectHome", "yes"},
	{"PrivateTmp", "yes"},
	{"PrivateDevices", "yes"},
	{"NoNewPrivileges", "yes"},
	{"CapabilityBoundingSet", ""},
	{"AmbientCapabilities", ""},
	{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
	{"RestrictNamespaces", "yes"},
	{"RestrictSUIDSGID", "yes"},
	{"MemoryDenyWriteExecute", "yes"},
	{"LockPersonality", "yes"},
	{"PrivateUsers", "yes"},
	{"PrivateIPC", "yes"},
	{"PrivateMounts", "yes"},
	{"ProtectKernelTunables", "yes"},
	{"ProtectKernelModules", "yes"},
	{"ProtectKernelLogs", "yes"},
	{"ProtectControlGroups", "yes"},
	{"ProtectClock", "yes"},
	{"ProtectHostname", "yes"},
	{"ProtectProc", "invisible"},
	{"RestrictRealtime", "yes"},
	{"SystemCallErrorNumber", "EPERM"},
	{"DevicePolicy", "closed"},
	{"SystemCallArchitectures", "native"},
	{"UMask", "0077"},
}

func checkSandbox(t *testing.T, name string, u unitFile) {
	t.Helper()
	for _, d := range sandbox {
		if got := u.one(t, "Service", d.key); got != d.want {
			t.Errorf("%s: %s=%s, want %s=%s", name, d.key, got, d.key, d.want)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("%s: SystemCallFilter= %q: want @system-service first (then only narrowed)", name, f)
	}
	if _, ok := u["Service"]["DynamicUser"]; ok {
		t.Errorf("%s: DynamicUser= is set: the units share the named user of responder-sysusers.conf", name)
	}
	if user := u.one(t, "Service", "User"); user == "" || user == "root" || user == "0" {
		t.Errorf("%s: User=%q: want the service's own system user", name, user)
	}
}

// defaults is the embedded default config, for the figures the units and
// manifests are sized from.
func defaults(t *testing.T) *configs.Config {
	t.Helper()
	cfg, err := configs.Load("", configs.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// drain is how long the daemon may take to stop after SIGTERM: the HTTP
// drain, then the deliveries in flight (run.go: the dispatcher stops after
// the server, each delivery bounded by notifications.timeout).
func drain(cfg *configs.Config) time.Duration {
	return cfg.HTTP.ShutdownTimeout + cfg.Notifications.Timeout
}

func TestSystemdDaemonUnit(t *testing.T) {
	u := parseUnit(t, filepath.Join(systemdDir, "responder.service"))
	checkSandbox(t, "responder.service", u)
	cfg := defaults(t)

	state := u.one(t, "Service", "StateDirectory")
	check(t, "StateDirectory", state, "responder")
	dataDir := "/var/lib/" + state
	if rw, ok := u["Service"]["ReadWritePaths"]; ok {
		t.Errorf("ReadWritePaths=%q: the data directory (StateDirectory=) must be the only writable path", rw)
	}
	check(t, "ExecStartPre", u.one(t, "Service", "ExecStartPre"), installedBin+" check-config "+installedConf)
	check(t, "ExecStart", u.one(t, "Service", "ExecStart"), installedBin+" serve --config "+installedConf+" --data-dir "+dataDir)
	check(t, "Restart", u.one(t, "Service", "Restart"), "on-failure")
	check(t, "WantedBy", u.one(t, "Install", "WantedBy"), "multi-user.target")

	// An empty capability bounding set only works on an unprivileged port.
	_, port, err := net.SplitHostPort(configs.DefaultListen)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := strconv.Atoi(port); p < 1024 {
		t.Errorf("the default listen port %d is privileged: CapabilityBoundingSet= (empty) cannot bind it", p)
	}

	stop := unitDuration(t, u.one(t, "Service", "TimeoutStopSec"))
	if stop <= drain(cfg) {
		t.Errorf("TimeoutStopSec=%s: want more than the drain, http.shutdown_timeout %s + notifications.timeout %s",
			stop, cfg.HTTP.ShutdownTimeout, cfg.Notifications.Timeout)
	}
	nofile, err := strconv.Atoi(u.one(t, "Service", "LimitNOFILE"))
	if err != nil || nofile < 4*cfg.HTTP.MaxIngestInFlight {
		t.Errorf("LimitNOFILE=%d (%v): want at least 4 x http.max_ingest_in_flight (%d)", nofile, err, cfg.HTTP.MaxIngestInFlight)
	}
}

func TestSystemdBackupUnits(t *testing.T) {
	daemon := parseUnit(t, filepath.Join(systemdDir, "responder.service"))
	u := parseUnit(t, filepath.Join(systemdDir, "responder-backup.service"))
	checkSandbox(t, "responder-backup.service", u)
	check(t, "backup User", u.one(t, "Service", "User"), daemon.one(t, "Service", "User"))
	check(t, "backup Type", u.one(t, "Service", "Type"), "oneshot")
	check(t, "backup ReadWritePaths", u.one(t, "Service", "ReadWritePaths"), "/var/backups/responder")
	if _, ok := u["Service"]["StateDirectory"]; ok {
		t.Error("responder-backup.service sets StateDirectory=: it would take the daemon's directory over; it only reads it through the daemon")
	}

	run := u.one(t, "Service", "ExecStart")
	for _, want := range []string{
		installedBin + " backup ",
		"--config /etc/responder/config.yml ",
		// The daemon's --data-dir: where the file is, held or not.
		"--data-dir /var/lib/" + daemon.one(t, "Service", "StateDirectory") + " ",
		"--token-file /etc/responder/",
		"--heartbeat backups ",
		"--to \"/var/backups/responder/",
	} {
		if !strings.Contains(run, want) {
			t.Errorf("backup ExecStart=%s: want %q in it", run, want)
		}
	}
	// In a unit file % starts a specifier and $ a variable: date's format
	// must be escaped to reach the shell as written.
	if !strings.Contains(run, "$$(date -u +%%Y%%m%%d") {
		t.Errorf("backup ExecStart=%s: want the date as $$(date -u +%%%%Y%%%%m%%%%d...)", run)
	}

	timer := parseUnit(t, filepath.Join(systemdDir, "responder-backup.timer"))
	if cal := timer.one(t, "Timer", "OnCalendar"); !strings.HasPrefix(cal, "*-*-* ") {
		t.Errorf("OnCalendar=%s: want a daily time", cal)
	}
	check(t, "Persistent", timer.one(t, "Timer", "Persistent"), "true")
	check(t, "timer Unit", timer.one(t, "Timer", "Unit"), "responder-backup.service")
	check(t, "timer WantedBy", timer.one(t, "Install", "WantedBy"), "timers.target")
}

// The user the units run as is the one sysusers.d creates, and the
// directories tmpfiles.d makes are its own.
func TestSystemdUserAndDirectories(t *testing.T) {
	user := parseUnit(t, filepath.Join(systemdDir, "responder.service")).one(t, "Service", "User")
	var created []string
	for _, f := range confLines(t, filepath.Join(systemdDir, "responder-sysusers.conf")) {
		if f[0] == "u" {
			created = append(created, f[1])
		}
	}
	check(t, "users created by responder-sysusers.conf", created, []string{user})

	dirs := map[string][]string{}
	for _, f := range confLines(t, filepath.Join(systemdDir, "responder-tmpfiles.conf")) {
		if len(f) < 5 || f[0] != "d" {
			t.Errorf("responder-tmpfiles.conf: %q: want d PATH MODE USER GROUP", f)
			continue
		}
		dirs[f[1]] = f[2:5]
	}
	check(t, "/etc/responder", dirs["/etc/responder"], []string{"0750", "root", user})
	check(t, "/var/backups/responder", dirs["/var/backups/responder"], []string{"0750", user, user})
}

// confLines are the fields of each line of a sysusers.d or tmpfiles.d file,
// quoted fields kept whole.
func confLines(t *testing.T, file string) [][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	field := regexp.MustCompile(`"[^"]*"|\S+`)
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		out = append(out, field.FindAllString(line, -1))
	}
	return out
}

// unitDuration parses a systemd time span such as 90s, 2min or 1min 30s.
func unitDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "min", "m"))
	if err != nil {
		t.Errorf("time span %q: %v", s, err)
	}
	return d
}

// systemd-analyze verify reads the units as systemd would load them, and
// security rates their sandbox. The units name the installed binary, which
// verify wants to exist: the copies in a temporary directory name a link to
// this test's executable instead.
func TestSystemdAnalyze(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		// A tool a machine without systemd lacks (a laptop running go test
		// by hand; the check is wanted "when present"). make deps installs
		// Debian's systemd, so make test and CI never skip it.
		t.Skip("systemd-analyze is not installed: the units are not verified here (the unit files' directives are still checked by TestSystemdDaemonUnit and TestSystemdBackupUnits)")
	}
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "responder")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	services, err := filepath.Glob(filepath.Join(systemdDir, "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	timers, err := filepath.Glob(filepath.Join(systemdDir, "*.timer"))
	if err != nil {
		t.Fatal(err)
	}
	units := append(services, timers...)
	var copies, copiedServices []string
	for _, f := range units {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if strings.HasSuffix(name, ".service") {
			if !bytes.Contains(b, []byte(installedBin)) {
				t.Errorf("%s does not run %s", name, installedBin)
			}
			copiedServices = append(copiedServices, filepath.Join(dir, name))
		}
		dst := filepath.Join(dir, name)
		if err := os.WriteFile(dst, bytes.ReplaceAll(b, []byte(installedBin), []byte(bin)), 0o600); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, dst)
	}
	check(t, "units", len(copies), 3)

	out, err := exec.CommandContext(t.Context(), analyze, append([]string{"verify", "--man=no"}, copies...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure 0.0 (locked down) to 10.0 (unprotected), given here in
	// tenths: both units rate about 1 ("OK"); a dropped directive shows.
	for _, s := range copiedServices {
		out, err := exec.CommandContext(t.Context(), analyze, "security", "--offline=true", "--threshold=20", s).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", filepath.Base(s), err, out)
			continue
		}
		if i := bytes.Index(out, []byte("Overall exposure level")); i >= 0 {
			t.Logf("%s", bytes.TrimSpace(out[i:]))
		}
	}

	// The user the units run as, as systemd-sysusers would create it.
	sysusers, err := exec.LookPath("systemd-sysusers")
	if err != nil {
		t.Fatalf("systemd-analyze is installed but systemd-sysusers is not: %v", err)
	}
	conf, err := filepath.Abs(filepath.Join(systemdDir, "responder-sysusers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.CommandContext(t.Context(), sysusers, "--dry-run", "--root="+t.TempDir(), conf).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Creating user 'responder'")) {
		t.Errorf("systemd-sysusers --dry-run %s: %v\n%s", conf, err, out)
	}
}

// Kubernetes objects, as far as the manifests use them. Each document is
// decoded with unknown fields refused, so that a misspelt field (which
// kubectl would drop or refuse) fails here; a field the manifests start to
// use needs a line below.
type (
	kObject struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   kMeta             `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		Spec       yaml.Node         `yaml:"spec"`
		file       string
	}
	kMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	kSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	kWorkload struct {
		Replicas             *int             `yaml:"replicas"`
		ServiceName          string           `yaml:"serviceName"`
		Selector             kSelector        `yaml:"selector"`
		Strategy             map[string]any   `yaml:"strategy"`
		UpdateStrategy       map[string]any   `yaml:"updateStrategy"`
		PodManagementPolicy  string           `yaml:"podManagementPolicy"`
		Template             kTemplate        `yaml:"template"`
		VolumeClaimTemplates []kClaimTemplate `yaml:"volumeClaimTemplates"`
	}
	kTemplate struct {
		Metadata kMeta    `yaml:"metadata"`
		Spec     kPodSpec `yaml:"spec"`
	}
	kClaimTemplate struct {
		Metadata kMeta `yaml:"metadata"`
		Spec     struct {
			AccessModes      []string `yaml:"accessModes"`
			StorageClassName string   `yaml:"storageClassName"`
			Resources        struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	}
	kPodSpec struct {
		TerminationGracePeriodSeconds *int                `yaml:"terminationGracePeriodSeconds"`
		AutomountServiceAccountToken  *bool               `yaml:"automountServiceAccountToken"`
		EnableServiceLinks            *bool               `yaml:"enableServiceLinks"`
		TopologySpreadConstraints     []kSpread           `yaml:"topologySpreadConstraints"`
		Affinity                      map[string]any      `yaml:"affinity"`
		SecurityContext               kPodSecurityContext `yaml:"securityContext"`
		Containers                    []kContainer        `yaml:"containers"`
		Volumes                       []kVolume           `yaml:"volumes"`
	}
	kSpread struct {
		MaxSkew           int       `yaml:"maxSkew"`
		TopologyKey       string    `yaml:"topologyKey"`
		WhenUnsatisfiable string    `yaml:"whenUnsatisfiable"`
		LabelSelector     kSelector `yaml:"labelSelector"`
	}
	kPodSecurityContext struct {
		RunAsNonRoot        *bool  `yaml:"runAsNonRoot"`
		RunAsUser           *int64 `yaml:"runAsUser"`
		RunAsGroup          *int64 `yaml:"runAsGroup"`
		FSGroup             *int64 `yaml:"fsGroup"`
		FSGroupChangePolicy string `yaml:"fsGroupChangePolicy"`
		SeccompProfile      struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	kContainer struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		StartupProbe   *kProbe `yaml:"startupProbe"`
		LivenessProbe  *kProbe `yaml:"livenessProbe"`
		ReadinessProbe *kProbe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	}
	kProbe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
	}
	kVolume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string  `yaml:"name"`
			Items []kItem `yaml:"items"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName  string  `yaml:"secretName"`
			DefaultMode *int    `yaml:"defaultMode"`
			Items       []kItem `yaml:"items"`
		} `yaml:"secret"`
		EmptyDir map[string]any `yaml:"emptyDir"`
	}
	kItem struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}
	kService struct {
		Type      string            `yaml:"type"`
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	kPDB struct {
		MinAvailable   string    `yaml:"minAvailable"`
		MaxUnavailable string    `yaml:"maxUnavailable"`
		Selector       kSelector `yaml:"selector"`
	}
)

// strict decodes n into out, refusing fields out does not have.
func strict(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// manifests decodes every document of every YAML file in dir.
func manifests(t *testing.T, dir string) []kObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", dir)
	}
	var out []kObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var o kObject
			if err := strict(&doc, &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.file = f
			out = append(out, o)
		}
	}
	return out
}

// show prints what p points to, or "unset".
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func showMode(m *int) string {
	if m == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *m)
}

// subset reports whether every label of sel is in labels (and sel selects
// something).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// bytesOf parses a memory quantity such as 512Mi, 1Gi or 300M.
func bytesOf(t *testing.T, q string) int64 {
	t.Helper()
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Errorf("quantity %q: %v", q, err)
			}
			return v * u.mult
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Errorf("quantity %q: %v", q, err)
	}
	return v
}

// Measured in docs/benchmarks.md: RSS with 100,000 firing alerts, and the
// peak under overload at 3x capacity.
const (
	measuredSteadyRSS = 196 << 20
	measuredPeakRSS   = 442 << 20
)

func TestKubernetesSingle(t *testing.T) {
	checkManifests(t, filepath.Join("kubernetes", "single"), "StatefulSet")
}

func TestKubernetesReplicas(t *testing.T) {
	checkManifests(t, filepath.Join("kubernetes", "replicas"), "Deployment")
}

// checkManifests checks one set: its one workload of kind, the Services and
// disruption budgets around it, and the config it runs.
func checkManifests(t *testing.T, dir, kind string) {
	objs := manifests(t, dir)
	byKind := map[string][]kObject{}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap", "Service", "StatefulSet", "Deployment", "PodDisruptionBudget":
		default:
			t.Errorf("%s: kind %q: this test does not know what to check of it", o.file, o.Kind)
		}
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	if n := len(byKind[kind]); n != 1 {
		t.Fatalf("%s: %d %ss, want 1", dir, n, kind)
	}
	wo := byKind[kind][0]
	var w kWorkload
	if err := strict(&wo.Spec, &w); err != nil {
		t.Fatalf("%s: %s spec: %v", wo.file, kind, err)
	}
	pod := w.Template.Spec
	podLabels := w.Template.Metadata.Labels
	if !subset(w.Selector.MatchLabels, podLabels) {
		t.Errorf("%s: selector %v does not select the pod template's labels %v", kind, w.Selector.MatchLabels, podLabels)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", kind, len(pod.Containers))
	}
	c := pod.Containers[0]
	uid := dockerfileUser(t)

	// Non-root, read-only, nothing to escalate to.
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || c.SecurityContext.RunAsNonRoot == nil || !*c.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot must be true for the pod and the container", kind)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != uid {
		t.Errorf("%s: runAsUser %s, want the Dockerfile's USER %d", kind, show(sc.RunAsUser), uid)
	}
	if sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
		t.Errorf("%s: fsGroup %s, runAsGroup %s: want both, equal, so that volumes and secret files are the daemon's group's", kind, show(sc.FSGroup), show(sc.RunAsGroup))
	}
	if r := c.SecurityContext.ReadOnlyRootFilesystem; r == nil || !*r {
		t.Errorf("%s: readOnlyRootFilesystem must be true", kind)
	}
	if a := c.SecurityContext.AllowPrivilegeEscalation; a == nil || *a {
		t.Errorf("%s: allowPrivilegeEscalation must be false", kind)
	}
	check(t, kind+" capabilities dropped", c.SecurityContext.Capabilities.Drop, []string{"ALL"})
	check(t, kind+" capabilities added", len(c.SecurityContext.Capabilities.Add), 0)

	// The image's ENTRYPOINT (the binary) stays; the manifest gives its
	// arguments.
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's ENTRYPOINT: give args only", kind, c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("%s: args %q: want serve first", kind, c.Args)
	}
	flags := map[string]string{}
	for i := 1; i+1 < len(c.Args); i += 2 {
		flags[c.Args[i]] = c.Args[i+1]
	}

	// Resources, from the measured memory.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("%s: resources.requests.%s is missing", kind, r)
		}
	}
	if req := bytesOf(t, c.Resources.Requests["memory"]); req < measuredSteadyRSS {
		t.Errorf("%s: memory request %s is below the measured RSS with 100,000 firing alerts (196 MiB)", kind, c.Resources.Requests["memory"])
	}
	if lim := c.Resources.Limits["memory"]; lim == "" || bytesOf(t, lim) < measuredPeakRSS {
		t.Errorf("%s: memory limit %q: want at least the measured overload peak (442 MiB)", kind, lim)
	}

	// Ports and probes.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
		ports[strconv.Itoa(p.ContainerPort)] = p.ContainerPort
	}
	for _, p := range []struct {
		name  string
		probe *kProbe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s httpGet", kind, p.name)
			continue
		}
		check(t, kind+" "+p.name+" path", p.probe.HTTPGet.Path, p.path)
		if _, ok := ports[p.probe.HTTPGet.Port]; !ok {
			t.Errorf("%s: %s port %q is not a port of the container", kind, p.name, p.probe.HTTPGet.Port)
		}
	}

	// Volumes: every mount is a declared volume (or claim template), every
	// volume is mounted.
	volumes := map[string]kVolume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	claims := map[string]bool{}
	for _, ct := range w.VolumeClaimTemplates {
		claims[ct.Metadata.Name] = true
	}
	mounted := map[string]bool{}
	mountOf := map[string]kVolume{} // mount path -> volume
	claimMounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounted[m.Name] = true
		v, ok := volumes[m.Name]
		switch {
		case ok:
			mountOf[m.MountPath] = v
		case claims[m.Name]:
			claimMounts[m.MountPath] = true
		default:
			t.Errorf("%s: volumeMount %s at %s names no volume or volumeClaimTemplate", kind, m.Name, m.MountPath)
		}
	}
	for name := range volumes {
		if !mounted[name] {
			t.Errorf("%s: volume %s is never mounted", kind, name)
		}
	}
	for name := range claims {
		if !mounted[name] {
			t.Errorf("%s: volumeClaimTemplate %s is never mounted", kind, name)
		}
	}

	// The config: a ConfigMap's key, mounted where --config says.
	configPath := flags["--config"]
	cm := mountOf[path.Dir(configPath)]
	if cm.ConfigMap == nil {
		t.Fatalf("%s: --config %s is not in a mounted ConfigMap", kind, configPath)
	}
	var text string
	for _, o := range byKind["ConfigMap"] {
		if o.Metadata.Name == cm.ConfigMap.Name {
			text = o.Data[path.Base(configPath)]
		}
	}
	if text == "" {
		t.Fatalf("%s: ConfigMap %s has no key %s", kind, cm.ConfigMap.Name, path.Base(configPath))
	}
	cfg := loadShipped(t, text, flags["--data-dir"], mountOf, secretKeysDocumented(t, wo.file))

	// The config fits the pod: the port probed is the one it listens on,
	// on every interface. The kubelet probes the pod's IP address, and
	// only a daemon listening on every interface takes any IP as its Host
	// (else the probes get 421).
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		t.Errorf("%s: listen %s: want every interface (0.0.0.0) for the probes and the Service", kind, cfg.Listen)
	}
	if p, _ := strconv.Atoi(port); ports["http"] != p {
		t.Errorf("%s: the container's http port %d is not the config's listen port %s", kind, ports["http"], port)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain(cfg) {
		t.Errorf("%s: terminationGracePeriodSeconds %s: want more than the drain, http.shutdown_timeout %s + notifications.timeout %s",
			kind, show(g), cfg.HTTP.ShutdownTimeout, cfg.Notifications.Timeout)
	}

	switch kind {
	case "StatefulSet":
		// The embedded default: one process on one bbolt file, on the
		// claim's volume.
		if cfg.Store.Postgres != nil {
			t.Error("StatefulSet: the single set's config keeps its data in PostgreSQL")
		}
		if w.Replicas == nil || *w.Replicas != 1 {
			t.Errorf("StatefulSet: replicas %s: the bbolt file belongs to one process, want 1", show(w.Replicas))
		}
		if !claimMounts[cfg.DataDir] {
			t.Errorf("StatefulSet: data directory %s is not a volumeClaimTemplate's mount (%v)", cfg.DataDir, claimMounts)
		}
		if sc.FSGroup == nil {
			t.Error("StatefulSet: no fsGroup: the daemon could not write the new volume")
		}
		governing := false
		for _, o := range byKind["Service"] {
			var s kService
			if err := strict(&o.Spec, &s); err != nil {
				t.Fatal(err)
			}
			governing = governing || (o.Metadata.Name == w.ServiceName && s.ClusterIP == "None")
		}
		if !governing {
			t.Errorf("StatefulSet: serviceName %q is not a headless Service of the set", w.ServiceName)
		}
	case "Deployment":
		// Replicas: PostgreSQL, three of them, never fewer than two
		// through a voluntary disruption, on different nodes.
		if cfg.Store.Postgres == nil {
			t.Error("Deployment: the config has no store.postgres: replicas on one bbolt file cannot work")
		}
		if w.Replicas == nil || *w.Replicas != 3 {
			t.Errorf("Deployment: replicas %s, want 3", show(w.Replicas))
		}
		if len(byKind["PodDisruptionBudget"]) != 1 {
			t.Fatalf("Deployment: %d PodDisruptionBudgets, want 1", len(byKind["PodDisruptionBudget"]))
		}
		var pdb kPDB
		if err := strict(&byKind["PodDisruptionBudget"][0].Spec, &pdb); err != nil {
			t.Fatal(err)
		}
		if !subset(pdb.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget: selector %v does not select the pods (%v)", pdb.Selector.MatchLabels, podLabels)
		}
		if pdb.MinAvailable != "2" && pdb.MaxUnavailable != "1" {
			t.Errorf("PodDisruptionBudget: minAvailable %q, maxUnavailable %q: want minAvailable 2 or maxUnavailable 1", pdb.MinAvailable, pdb.MaxUnavailable)
		}
		perNode := false
		for _, s := range pod.TopologySpreadConstraints {
			perNode = perNode || (s.TopologyKey == "kubernetes.io/hostname" && s.WhenUnsatisfiable == "DoNotSchedule" &&
				s.MaxSkew == 1 && subset(s.LabelSelector.MatchLabels, podLabels))
		}
		if !perNode {
			t.Error("Deployment: no topologySpreadConstraints that keeps the replicas on different nodes (kubernetes.io/hostname, DoNotSchedule)")
		}
	}

	// Services select the pods and send to a port they have.
	if len(byKind["Service"]) == 0 {
		t.Errorf("%s: no Service", dir)
	}
	for _, o := range byKind["Service"] {
		var s kService
		if err := strict(&o.Spec, &s); err != nil {
			t.Fatalf("%s: Service %s: %v", o.file, o.Metadata.Name, err)
		}
		if !subset(s.Selector, podLabels) {
			t.Errorf("Service %s: selector %v does not select the pods (%v)", o.Metadata.Name, s.Selector, podLabels)
		}
		for _, p := range s.Ports {
			if _, ok := ports[p.TargetPort]; !ok {
				t.Errorf("Service %s: targetPort %q is not a port of the container", o.Metadata.Name, p.TargetPort)
			}
		}
	}
}

// loadShipped loads the config text of a manifest through configs.Load,
// as serve and check-config would, after checking that every *_file it
// names is a file of a secret volume mounted in the pod. Those files do not
// exist here: each path is pointed at a file with a stand-in value in a
// temporary directory.
func loadShipped(t *testing.T, text, dataDir string, mountOf map[string]kVolume, documented []string) *configs.Config {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatalf("config.yml: %v", err)
	}
	dir := t.TempDir()
	var listed []string
	n := 0
	var walk func(*yaml.Node)
	walk = func(node *yaml.Node) {
		for i, c := range node.Content {
			if node.Kind == yaml.MappingNode && i%2 == 1 {
				key := node.Content[i-1].Value
				if strings.HasSuffix(key, "_file") && c.Kind == yaml.ScalarNode {
					listed = append(listed, secretItem(t, key, c.Value, mountOf)...)
					n++
					stand := filepath.Join(dir, fmt.Sprintf("%d-%s", n, path.Base(c.Value)))
					if err := os.WriteFile(stand, []byte(standIn(t, key, n)+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					c.Value = stand
					continue
				}
			}
			walk(c)
		}
	}
	walk(&root)
	if n == 0 {
		t.Error("config.yml names no *_file: its tokens would be in the ConfigMap")
	}
	slices.Sort(listed)
	check(t, "secret keys the config reads, against those `kubectl create secret` in the manifest's comment makes", listed, documented)

	b, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(file, configs.Overrides{DataDir: dataDir})
	if err != nil {
		t.Fatalf("the shipped config does not load: %v", err)
	}
	if _, err := cfg.BuildPolicy(); err != nil {
		t.Fatalf("the shipped config's policy: %v", err)
	}
	if w := cfg.Warnings(); len(w) > 0 {
		t.Errorf("the shipped config has warnings: %q", w)
	}
	return cfg
}

// secretItem checks that file (the value of key) is an item of a secret
// volume mounted at its directory, readable by the pod's group only, and
// returns the secret's key for it.
func secretItem(t *testing.T, key, file string, mountOf map[string]kVolume) []string {
	t.Helper()
	v, ok := mountOf[path.Dir(file)]
	if !ok || v.Secret == nil {
		t.Errorf("%s: %s: its directory is not a mounted secret volume", key, file)
		return nil
	}
	if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
		t.Errorf("secret volume %s: defaultMode %s: want the files unreadable to others (such as 0440)", v.Name, showMode(m))
	}
	for _, it := range v.Secret.Items {
		if it.Path == path.Base(file) {
			return []string{it.Key}
		}
	}
	t.Errorf("%s: %s: no item of secret %s is mounted at that path (items: %v)", key, file, v.Secret.SecretName, v.Secret.Items)
	return nil
}

// standIn is a value of the kind the file of key holds, distinct for n.
func standIn(t *testing.T, key string, n int) string {
	t.Helper()
	switch key {
	case "dsn_file":
		return "postgres://responder:stand-in-password@db.example.com:5432/responder?sslmode=verify-full"
	case "token_file", "app_token_file", "signing_secret_file", "password_file", "client_secret_file",
		"api_key_file", "api_token_file", "routing_key_file", "webhook_secret_file":
		return fmt.Sprintf("stand-in-secret-%02d-for-the-deploy-test", n)
	}
	t.Fatalf("the config names %s: this test cannot stand in for that file; add its kind to standIn", key)
	return ""
}

// secretKeysDocumented are the keys of the `kubectl create secret generic`
// command in the comments of a manifest (--from-file=KEY=...), sorted.
func secretKeysDocumented(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range regexp.MustCompile(`--from-file=([A-Za-z0-9._-]+)=`).FindAllSubmatch(b, -1) {
		keys = append(keys, string(m[1]))
	}
	if len(keys) == 0 {
		t.Errorf("%s: no `kubectl create secret generic ... --from-file=KEY=FILE` in its comments", file)
	}
	slices.Sort(keys)
	return keys
}

// dockerStage is one stage of the Dockerfile: its FROM and its
// instructions (continuation lines joined, comments dropped).
type dockerStage struct {
	from  string
	lines [][2]string // instruction, arguments
}

func dockerfileStages(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var stages []dockerStage
	var pending string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			pending += more + " "
			continue
		}
		line, pending = pending+line, ""
		instr, args, _ := strings.Cut(line, " ")
		instr, args = strings.ToUpper(instr), strings.TrimSpace(args)
		if instr == "FROM" {
			stages = append(stages, dockerStage{from: args})
			continue
		}
		if len(stages) == 0 {
			if instr != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", instr)
			}
			continue
		}
		s := &stages[len(stages)-1]
		s.lines = append(s.lines, [2]string{instr, args})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and the image", len(stages))
	}
	return stages
}

// dockerfileUser is the numeric user the image runs as.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	stages := dockerfileStages(t)
	user := ""
	for _, l := range stages[len(stages)-1].lines {
		if l[0] == "USER" {
			user = l[1]
		}
	}
	name, _, _ := strings.Cut(user, ":")
	uid, err := strconv.ParseInt(name, 10, 64)
	if err != nil || uid == 0 {
		t.Fatalf("Dockerfile: the image's USER %q: want a numeric user other than 0 (root), which runAsNonRoot can check", user)
	}
	return uid
}

// The Docker engine does not run here, so the image is not built: its
// lines are checked instead.
func TestDockerfile(t *testing.T) {
	stages := dockerfileStages(t)
	build, image := stages[:len(stages)-1], stages[len(stages)-1]

	// The build is `make build`, as on a workstation and in CI.
	made := false
	for _, s := range build {
		for _, l := range s.lines {
			if l[0] != "RUN" {
				continue
			}
			if regexp.MustCompile(`(^|&&|;)\s*make build\b`).MatchString(l[1]) {
				made = true
			}
			if strings.Contains(l[1], "go build") {
				t.Errorf("Dockerfile: RUN %s: build with `make build`, not a go build of its own", l[1])
			}
		}
	}
	if !made {
		t.Error("Dockerfile: no RUN make build in a build stage")
	}
	// The image has no C library: the build must be static.
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n\t(.*)`).FindSubmatch(mk)
	if recipe == nil || !bytes.Contains(recipe[1], []byte("CGO_ENABLED=0")) || !bytes.Contains(recipe[1], []byte("-o bin/responder")) {
		t.Errorf("Makefile: the build recipe %q: want CGO_ENABLED=0 ... -o bin/responder (the image is static)", recipe)
	}
	if !strings.Contains(image.from, "distroless/static") {
		t.Errorf("Dockerfile: the image is FROM %s: want a static distroless base", image.from)
	}

	// The image: non-root, its entrypoint the binary make build wrote.
	if uid := dockerfileUser(t); uid < 1000 {
		t.Errorf("Dockerfile: USER %d: want an unprivileged user", uid)
	}
	var binary string
	var entrypoint []string
	for _, l := range image.lines {
		switch l[0] {
		case "COPY":
			f := strings.Fields(l[1])
			if len(f) >= 3 && strings.HasPrefix(f[0], "--from=") && strings.HasSuffix(f[len(f)-2], "/bin/responder") {
				binary = f[len(f)-1]
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(l[1]), &entrypoint); err != nil {
				t.Errorf("Dockerfile: ENTRYPOINT %s: want the exec form, a JSON list (%v)", l[1], err)
			}
		}
	}
	if binary == "" {
		t.Fatal("Dockerfile: the image copies no bin/responder from a build stage")
	}
	check(t, "Dockerfile ENTRYPOINT", entrypoint, []string{binary})
}
