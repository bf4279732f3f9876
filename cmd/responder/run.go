package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/handlers/slackapp"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/email"
	"github.com/responder-sre/responder/integrations/opsgenie"
	"github.com/responder-sre/responder/integrations/outbox"
	"github.com/responder-sre/responder/integrations/pagerduty"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/zoom"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
	"github.com/responder-sre/responder/store/postgres"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// dbFile is the database file's name inside data_dir.
const dbFile = "responder.db"

// envBusyFile names the failpoint used by overload tests: while the file it
// names exists, every write is refused as if the queue were full (503 with
// Retry-After). Unset in production.
const envBusyFile = "RESPONDER_FAILPOINT_BUSY_FILE"

const usage = `usage:
  responder [serve] [--config FILE] [--listen ADDR] [--data-dir DIR]
  responder check-config FILE
  responder migrate --from DATA_DIR (--to-postgres DSN | --to-postgres-file FILE)
  responder backup --to FILE [--config FILE] [--data-dir DIR] [--url URL] [--token-file FILE] [--heartbeat NAME]
  responder restore --from FILE (--data-dir DIR | --config FILE)
  responder version
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "check-config":
		return checkConfig(args, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, stdout, stderr)
	case "backup":
		return backup(ctx, args, stdout, stderr)
	case "restore":
		return restore(ctx, args, stdout, stderr)
	case "version":
		_, _ = fmt.Fprintf(stdout, "responder %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	}
	_, _ = fmt.Fprintf(stderr, "responder: unknown command %q\n%s", cmd, usage)
	return 2
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		_, _ = fmt.Fprint(stderr, "responder check-config: want exactly one FILE\n"+usage)
		return 2
	}
	b, err := loadConfig(args[0], configs.Overrides{})
	if err != nil {
		printConfigError(stderr, args[0], err)
		return 1
	}
	for _, w := range b.cfg.Warnings() {
		_, _ = fmt.Fprintf(stdout, "%s: warning: %s\n", args[0], w)
	}
	_, _ = fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

func printConfigError(w io.Writer, path string, err error) {
	if path == "" {
		path = "embedded default config"
	}
	var p configs.Problems
	if errors.As(err, &p) {
		_, _ = fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(p))
		for _, line := range p {
			_, _ = fmt.Fprintf(w, "  %s\n", line)
		}
		return
	}
	_, _ = fmt.Fprintf(w, "%s: %v\n", path, err)
}

// loadConfig is the one load-and-build path shared by serve and
// check-config: everything serve needs is built here, without listening or
// opening the database.
func loadConfig(path string, o configs.Overrides) (*built, error) {
	cfg, err := configs.Load(path, o)
	if err != nil {
		return nil, err
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		return nil, err
	}
	b := &built{cfg: cfg, handlers: handlers.Config{
		BodyLimit:            cfg.HTTP.BodyLimitBytes,
		MaxIngestInFlight:    cfg.HTTP.MaxIngestInFlight,
		RetryAfter:           cfg.Store.RetryAfter,
		MaxAlerts:            cfg.Alertmanager.MaxAlerts,
		AllowedHosts:         cfg.HostsAllowed(),
		MetricsRequiresToken: cfg.HTTP.MetricsRequiresToken && len(cfg.Auth.Tokens) > 0,
		Secrets:              cfg.Secrets(),
	}}
	b.policy = pol
	b.incidents.ExternalURL = cfg.ExternalURL
	b.incidents.TimeZone = cfg.DisplayZone()
	if d := cfg.ActionItems.RemindEvery; d != nil {
		b.incidents.ActionRemindEvery = *d
	}
	b.clock = integrations.Clock{Zone: b.incidents.TimeZone}
	if cfg.HTTP.TLS.Enabled() {
		if b.tls, err = cfg.HTTP.TLS.ServerConfig(); err != nil {
			return nil, fmt.Errorf("http.tls: %w", err)
		}
	}
	for _, t := range cfg.Auth.Tokens {
		b.handlers.Tokens = append(b.handlers.Tokens, handlers.Token{Name: t.Name, Value: t.Token.Value(), Scopes: t.Scopes,
			RatePerSecond: t.RatePerSecond, Burst: t.Burst})
	}
	b.incidents.Scenarios = map[string]incident.Scenario{}
	for name, sc := range cfg.Drills.Scenarios {
		sev, err := policy.ParseSeverity(sc.Severity) // validated by Load
		if err != nil {
			return nil, fmt.Errorf("drills.scenarios.%s: %w", name, err)
		}
		b.incidents.Scenarios[name] = incident.Scenario{Title: sc.Title, Severity: sev, Labels: sc.Labels, Description: sc.Description}
	}
	for i, sd := range cfg.Drills.Schedule {
		c, err := policy.ParseCron(sd.Cron) // validated by Load
		if err != nil {
			return nil, fmt.Errorf("drills.schedule[%d].cron: %w", i, err)
		}
		loc, err := cfg.ScheduleZone(sd)
		if err != nil {
			return nil, fmt.Errorf("drills.schedule[%d].time_zone: %w", i, err)
		}
		b.incidents.Schedule = append(b.incidents.Schedule, incident.ScheduledDrill{Name: strings.TrimSpace(sd.Name), Scenario: sd.Scenario,
			Cron: c, Location: loc, Organiser: strings.TrimSpace(sd.Organiser), Surprise: sd.Surprise})
	}
	if err := buildNotifications(b); err != nil {
		return nil, err
	}
	return b, nil
}

// built is everything serve needs that the configuration decides, built
// without touching the network or the database.
type built struct {
	cfg       *configs.Config
	handlers  handlers.Config
	incidents incident.Config
	policy    *policy.Policy
	dispatch  outbox.Config
	notifiers []integrations.Notifier // vendors; the log notifier is added by serve
	clock     integrations.Clock      // how messages show times: UTC, display.time_zone beside
	previews  []integrations.Preview  // what the log notifier shows each vendor would receive
	tls       *tls.Config             // nil: plain HTTP
	slack     *slackFront             // Slack as a front door; nil when off
}

// slackFront is Slack's interactivity as configured: how Slack reaches
// the daemon and who may act.
type slackFront struct {
	mode     string // socket or http
	appToken string // socket
	secret   string // http
	api      slack.Config
	app      slackapp.Config
}

// buildNotifications builds the configured vendor notifiers and the routes
// that decide which of them each incident uses. The list of integrations is
// plain code.
func buildNotifications(b *built) error {
	n := b.cfg.Notifications
	client := &http.Client{Timeout: n.Timeout}
	r := incident.Routes{Log: n.Log, PageDrills: b.cfg.Drills.Page}
	b.dispatch = outbox.Config{
		MaxAge: n.MaxAge, BackoffBase: n.RetryBase, BackoffMax: n.RetryMax,
		Concurrency: n.Concurrency, Timeout: n.Timeout,
		Redactor: integrations.NewRedactor(b.cfg.Secrets()),
	}
	if pg := b.cfg.Store.Postgres; pg != nil {
		b.dispatch.LeaseTTL = pg.LeaseTTL
	}
	if s := n.Slack; s != nil {
		sc := s.Build(client)
		sc.Clock = b.clock
		sc.Buttons = s.Interactivity != nil
		sn, err := slack.New(sc)
		if err != nil {
			return fmt.Errorf("notifications.slack: %w", err)
		}
		b.notifiers = append(b.notifiers, sn)
		r.Slack = &incident.SlackRoutes{Channel: s.Channel, BySeverity: s.SeverityChannels, ByTeam: s.TeamChannels, Customer: s.CustomerChannel}
		b.dispatch.SlackRate, b.dispatch.SlackBurst = s.RatePerSecond, s.Burst
		if i := s.Interactivity; i != nil {
			f := &slackFront{mode: i.Mode, appToken: i.AppToken.Value(), secret: i.SigningSecret.Value(), api: sc,
				app: slackapp.Config{Command: i.Command, Teams: i.AllowedTeams, Channels: i.AllowedChannels, UserGroups: i.AllowedUserGroups}}
			if f.mode == "socket" {
				if _, err := slack.NewSocket(sc, f.appToken); err != nil { // the same checks serve makes
					return fmt.Errorf("notifications.slack.interactivity: %w", err)
				}
			}
			b.slack = f
		}
	}
	if e := n.Email; e != nil {
		ec := e.Build()
		ec.Clock = b.clock
		en, err := email.New(ec)
		if err != nil {
			return fmt.Errorf("notifications.email: %w", err)
		}
		b.notifiers = append(b.notifiers, en)
		r.Email = &incident.EmailRoutes{Recipients: e.Recipients, Customer: e.CustomerEngineering.To, Events: e.Events}
	}
	if z := n.Zoom; z != nil {
		r.Zoom = &incident.ZoomRoutes{BridgeURL: z.BridgeURL, TeamBridges: z.TeamBridges, API: z.API != nil}
		if z.API != nil {
			zn, err := zoom.New(z.API.Build(client))
			if err != nil {
				return fmt.Errorf("notifications.zoom.api: %w", err)
			}
			b.notifiers = append(b.notifiers, zn)
		}
	}
	responders := map[string]string{} // each pager's configured responder
	if o := n.OpsGenie; o != nil {
		oc := o.Build(client)
		on, err := opsgenie.New(oc)
		if err != nil {
			return fmt.Errorf("notifications.opsgenie: %w", err)
		}
		b.notifiers = append(b.notifiers, on)
		responders[integrations.ChannelOpsGenie] = oc.Responder.Label()
	}
	if j := n.JSM; j != nil {
		jc := j.Build(client)
		jn, err := opsgenie.NewJSM(jc)
		if err != nil {
			return fmt.Errorf("notifications.jsm: %w", err)
		}
		b.notifiers = append(b.notifiers, jn)
		responders[integrations.ChannelJSM] = jc.Responder.Label()
	}
	if d := n.PagerDuty; d != nil {
		pn, err := pagerduty.New(d.Build(client))
		if err != nil {
			return fmt.Errorf("notifications.pagerduty: %w", err)
		}
		b.notifiers = append(b.notifiers, pn)
		responders[integrations.ChannelPagerDuty] = pn.Responder()
		b.handlers.PagerDutySecrets = d.Secrets()
	}
	if len(responders) > 0 {
		r.Paging = &incident.PagingRoutes{Pager: n.DefaultPager(), ByTeam: n.Paging.TeamPagers,
			BySeverity: n.Paging.SeverityPagers, Responders: responders}
	}
	b.incidents.Routes = r
	if n.Log {
		var ceTemplate string
		if n.Email != nil {
			ceTemplate = n.Email.CustomerEngineering.Template
		}
		ep, err := email.Preview(b.clock, ceTemplate)
		if err != nil {
			return fmt.Errorf("notifications.email: %w", err)
		}
		b.previews = []integrations.Preview{slack.Preview(b.clock), ep, opsgenie.Preview(), pagerduty.Preview()}
	}
	return nil
}

// newLogger builds the daemon's one logger on w, with every secret of the
// configuration replaced by <secret> in whatever it writes.
func newLogger(cfg configs.LogConfig, w io.Writer, secrets []string) zerolog.Logger {
	f, isFile := w.(*os.File)
	w = integrations.NewRedactor(secrets).Writer(w)
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isFile || !isatty.IsTerminal(f.Fd())}
	}
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default: the embedded default)")
	listen := fs.String("listen", "", "listen address, overrides the config's listen")
	dataDir := fs.String("data-dir", "", "data directory, overrides the config's data_dir")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "responder serve: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	b, err := loadConfig(*configPath, configs.Overrides{Listen: *listen, DataDir: *dataDir})
	if err != nil {
		printConfigError(stderr, *configPath, err)
		return 1
	}
	log := newLogger(b.cfg.Log, stderr, b.cfg.Secrets())
	if err := runServer(ctx, b, getenv, log); err != nil {
		log.Error().Err(err).Msg("responder stopped")
		return 1
	}
	return 0
}

func runServer(ctx context.Context, b *built, getenv func(string) string, log zerolog.Logger) error {
	cfg := b.cfg
	var busy func() bool
	if busyFile := getenv(envBusyFile); busyFile != "" {
		log.Warn().Str("file", busyFile).Msg("failpoint on: writes are refused while this file exists")
		busy = func() bool { _, err := os.Stat(busyFile); return err == nil }
	}
	db, dbPath, err := openStore(ctx, cfg, busy)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error().Err(err).Msg("close store")
			return
		}
		log.Info().Str("path", dbPath).Msg("store closed")
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	notifiers := b.notifiers
	if cfg.Notifications.Log {
		notifiers = append(notifiers, integrations.NewLogNotifier(log, b.previews...))
	}
	dispatcher := outbox.New(b.dispatch, db, notifiers, log, time.Now, func(id string) string { return incident.URL(cfg.ExternalURL, id) }, reg)
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	go func() { dispatcher.Run(dctx); close(dispatched) }()
	// Stops after the HTTP server and before the store closes (defers run
	// last in, first out): deliveries in flight finish and are recorded.
	defer func() {
		stopDispatch()
		<-dispatched
		log.Info().Msg("dispatcher stopped")
	}()

	ln, inherited, err := listenSocket(ctx, cfg.Listen, getenv)
	if err != nil {
		return err
	}
	if inherited {
		if err := checkInheritedSocket(ln.Addr(), len(b.handlers.Tokens)); err != nil {
			_ = ln.Close()
			return err
		}
	}
	hcfg := b.handlers
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		// The address the socket has (an inherited one may differ from
		// listen); on every interface, any address of this machine.
		hcfg.AllowedHosts = append(append([]string(nil), hcfg.AllowedHosts...), tcp.IP.String())
		hcfg.AnyAddress = tcp.IP.IsUnspecified()
	}

	svc := incident.New(b.incidents, incident.Deps{Store: db, Policy: b.policy, Outbox: dispatcher, Log: log, Now: time.Now, Registry: reg})
	deps := handlers.Deps{Incidents: svc, Outbox: dispatcher, Log: log, Now: time.Now, Registry: reg}
	if bk, ok := db.(handlers.Backup); ok {
		deps.Backup = bk // the embedded file; PostgreSQL has its own backups
	}
	if f := b.slack; f != nil {
		stop, err := serveSlack(ctx, f, svc, log, cfg.HTTP.BodyLimitBytes, &deps)
		if err != nil {
			return err
		}
		// Stops with the HTTP server, before the store closes.
		defer stop()
	}
	if shared, ok := db.(handlers.Sessions); ok {
		// Replicas: one session key for all, logouts seen by all.
		key, err := shared.SessionKey(ctx)
		if err != nil {
			return fmt.Errorf("web sessions: %w", err)
		}
		hcfg.SessionKey, deps.Sessions = key, shared
	}
	srv := handlers.New(hcfg, deps)
	// Reminders stop before the dispatcher and the store (defers run last
	// in, first out).
	rctx, stopReminders := context.WithCancel(context.WithoutCancel(ctx))
	reminded := make(chan struct{})
	go func() { svc.RunReminders(rctx, incident.DefaultReminderEvery); close(reminded) }()
	defer func() { stopReminders(); <-reminded }()
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
	}
	scheme := "http"
	if b.tls != nil {
		hs.TLSConfig = b.tls
		ln = tls.NewListener(ln, b.tls)
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info().Str("listen", ln.Addr().String()).Bool("socket_activated", inherited).Str("scheme", scheme).
		Str("data", dbPath).Str("version", version).Int("tokens", len(b.handlers.Tokens)).Msg("responder serving")
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Str("timeout", cfg.HTTP.ShutdownTimeout.String()).Msg("shutting down: draining requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Cut the connections still open before the store closes under them.
		_ = hs.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", cfg.HTTP.ShutdownTimeout, err)
	}
	return nil
}

// listenSocket is the socket serve accepts on: the one a service manager
// passed (systemd socket activation: LISTEN_FDS=1 and LISTEN_PID naming
// this process, the socket at file descriptor 3), else a new one on addr.
// inherited says which. A socket held by the service manager stays bound
// while the daemon restarts: connections wait in its backlog instead of
// being refused.
func listenSocket(ctx context.Context, addr string, getenv func(string) string) (ln net.Listener, inherited bool, err error) {
	fds := getenv("LISTEN_FDS")
	if fds == "" {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return nil, false, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, false, nil
	}
	if pid := getenv("LISTEN_PID"); pid != strconv.Itoa(os.Getpid()) {
		return nil, false, fmt.Errorf("LISTEN_FDS is set but LISTEN_PID %q is not this process (%d): "+
			"the sockets were passed to another process; unset LISTEN_FDS to listen on %s", pid, os.Getpid(), addr)
	}
	if fds != "1" {
		return nil, false, fmt.Errorf("LISTEN_FDS=%s: Responder serves one socket, pass exactly one (ListenStream= once)", fds)
	}
	f := os.NewFile(listenFD, "LISTEN_FDS socket")
	ln, err = net.FileListener(f) // a duplicate of the descriptor
	_ = f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("file descriptor %d from LISTEN_FDS is not a listening socket: %w", listenFD, err)
	}
	return ln, true, nil
}

// listenFD is where socket activation puts the first socket.
const listenFD = 3

// checkInheritedSocket holds a socket passed by a service manager to the
// rule the config's listen address is held to: without tokens, loopback
// only.
func checkInheritedSocket(addr net.Addr, tokens int) error {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("the socket passed in LISTEN_FDS is %s %s, not TCP", addr.Network(), addr)
	}
	if tokens == 0 && !tcp.IP.IsLoopback() {
		return fmt.Errorf("the socket passed in LISTEN_FDS listens on %s, which is not loopback: configure at least one token in auth.tokens, or pass a loopback socket", addr)
	}
	return nil
}

// openStore opens the configured store: PostgreSQL when store.postgres is
// set, else the bbolt file in data_dir. where names it for the log (never
// the DSN, which may hold a password).
func openStore(ctx context.Context, cfg *configs.Config, busy func() bool) (db store.DB, where string, err error) {
	if pg := cfg.Store.Postgres; pg != nil {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		pdb, err := postgres.Open(octx, pg.DSN.Value(), postgres.Options{MaxWrites: cfg.Store.QueueSize, MaxConns: pg.MaxConns, Busy: busy})
		if err != nil {
			return nil, "", err
		}
		return pdb, "postgresql", nil
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	bdb, err := bolt.Open(path, bolt.Options{QueueSize: cfg.Store.QueueSize, MaxBatch: cfg.Store.MaxBatch, LockTimeout: cfg.Store.LockTimeout, Busy: busy})
	if err != nil {
		return nil, "", err
	}
	return bdb, path, nil
}

// serveSlack makes Slack a front door: over HTTP it gives the handlers the
// slash command's request URL; over Socket Mode it runs the connection
// until the returned stop is called.
func serveSlack(ctx context.Context, f *slackFront, svc *incident.Service, log zerolog.Logger, bodyLimit int64, deps *handlers.Deps) (stop func(), err error) {
	api, err := slack.NewApp(f.api)
	if err != nil {
		return nil, fmt.Errorf("notifications.slack.interactivity: %w", err)
	}
	app := slackapp.New(f.app, svc, api, log, time.Now)
	if f.mode == "http" {
		deps.Slack = &slackapp.HTTP{App: app, Secret: f.secret, BodyLimit: bodyLimit}
		log.Info().Str("command", f.app.Command).Msg("slack interactivity: request URLs /api/v1/slack/commands and /api/v1/slack/interactivity")
		return func() {}, nil
	}
	client, err := slack.NewSocket(f.api, f.appToken)
	if err != nil {
		return nil, fmt.Errorf("notifications.slack.interactivity: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		if err := (&slackapp.Socket{App: app, Client: client}).Run(sctx); err != nil {
			log.Error().Err(err).Msg("slack socket mode stopped")
		}
		close(done)
	}()
	log.Info().Str("command", f.app.Command).Msg("slack interactivity: socket mode")
	return func() { cancel(); <-done }, nil
}
