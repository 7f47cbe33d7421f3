package archive

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/engine"
)

// Request is what `kura archive --request=<json>` is given. Nothing secret is in it: the
// password and the S3 keys are read from files.
type Request struct {
	Namespace string `json:"namespace"`
	Cluster   string `json:"cluster"`
	Lineage   string `json:"lineage"`
	// Sources are host:port of the cluster's instances (or of its primary Service).
	Sources []string `json:"sources"`
	// ServerID is the archiver's replica server id (unique among the cluster's servers).
	ServerID uint32 `json:"serverID"`
	// User defaults to the agent account; AgentPasswordFile holds its password.
	User              string               `json:"user,omitempty"`
	AgentPasswordFile string               `json:"agentPasswordFile"`
	Storage           backup.StorageConfig `json:"storage"`
	// PieceInterval and PieceSize override the defaults (2s, 32 MiB).
	PieceInterval string `json:"pieceInterval,omitempty"`
	PieceSize     int    `json:"pieceSize,omitempty"`
	// LeaseTTL overrides the lease's time to live (default 15s).
	LeaseTTL string `json:"leaseTTL,omitempty"`
	// Listen serves /metrics and /status (default :8081; "-" serves nothing).
	Listen string `json:"listen,omitempty"`
}

// Command is `kura archive --request=<json>`: it archives until SIGTERM.
func Command(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("kura archive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reqText := fs.String("request", "", "the archive request (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reqText == "" {
		return errors.New("usage: kura archive --request=<json>")
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(*reqText))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("invalid --request: %w", err)
	}
	cfg, listen, err := req.config(ctx)
	if err != nil {
		return err
	}
	cfg.Log = func(format string, args ...any) {
		_, _ = fmt.Fprintf(stderr, time.Now().UTC().Format(time.RFC3339)+" "+format+"\n", args...)
	}
	a, err := New(cfg)
	if err != nil {
		return err
	}
	if listen != "-" {
		srv, err := a.serve(listen, req)
		if err != nil {
			return err
		}
		defer func() { _ = srv.Close() }()
	}
	return a.Run(ctx)
}

func (r Request) config(ctx context.Context) (Config, string, error) {
	cfg := Config{Layout: backup.Layout{Namespace: r.Namespace, Cluster: r.Cluster, Lineage: r.Lineage},
		Sources: r.Sources, ServerID: r.ServerID, User: r.User, PieceSize: r.PieceSize}
	if cfg.User == "" {
		cfg.User = engine.AgentUser
	}
	for _, d := range []struct {
		name, text string
		to         *time.Duration
	}{{"pieceInterval", r.PieceInterval, &cfg.PieceInterval}, {"leaseTTL", r.LeaseTTL, &cfg.LeaseTTL}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v <= 0 {
			return cfg, "", fmt.Errorf("invalid %s %q: give a positive duration such as 2s", d.name, d.text)
		}
		*d.to = v
	}
	pw, err := os.ReadFile(r.AgentPasswordFile)
	if err != nil {
		return cfg, "", fmt.Errorf("failed to read the agent password: %w", err)
	}
	cfg.Password = strings.TrimSpace(string(pw))
	if cfg.Storage, err = backup.OpenStorage(ctx, r.Storage); err != nil {
		return cfg, "", err
	}
	listen := r.Listen
	if listen == "" {
		listen = ":8081"
	}
	return cfg, listen, nil
}

// Metrics of the archiver process (docs/metrics.md), labelled by namespace and cluster.
func (a *Archiver) collectors(req Request) []prometheus.Collector {
	labels := prometheus.Labels{"namespace": req.Namespace, "cluster": req.Cluster}
	gauge := func(name, help string, f func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kura", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(a.Status()) })
	}
	counter := func(name, help string, f func(Status) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "kura", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(a.Status()) })
	}
	return []prometheus.Collector{
		gauge("archive_lag_seconds", "Time since everything the primary sent was last stored by the binlog archiver.",
			func(s Status) float64 { return s.Lag(time.Now()).Seconds() }),
		gauge("archive_last_piece_timestamp_seconds", "When the newest binlog archive piece was stored.",
			func(s Status) float64 { return float64(s.LastPieceTime.UnixNano()) / 1e9 }),
		gauge("archive_holding_lease", "1 while this archiver holds the archive lease.",
			func(s Status) float64 { return map[bool]float64{true: 1}[s.Holding] }),
		gauge("archive_gaps", "GTID gaps the archiver found since it started.",
			func(s Status) float64 { return float64(len(s.Gaps)) }),
		counter("archive_pieces_total", "Binlog archive pieces stored.", func(s Status) float64 { return float64(s.Pieces) }),
		counter("archive_bytes_total", "Bytes of binlog archive pieces stored (compressed).", func(s Status) float64 { return float64(s.Bytes) }),
		counter("archive_failures_total", "Failures of the binlog archiver (connections, storage, lease).",
			func(s Status) float64 { return float64(s.Failures) }),
	}
}

// serve exposes /metrics and /status (the status as JSON, with lag and expiry warning).
func (a *Archiver) serve(listen string, req Request) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.collectors(req)...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		s := a.Status()
		now := time.Now()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Status
			LagSeconds    float64 `json:"lagSeconds"`
			ExpiryWarning string  `json:"expiryWarning,omitempty"`
		}{s, s.Lag(now).Seconds(), s.ExpiryWarning(now)})
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
