package daemon

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/iocstream/iocstream/internal/alertmanager"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/metrics"
	"github.com/iocstream/iocstream/internal/silence"
)

// forwarder is the Alertmanager bridge of one iocd, or nothing.
type forwarder struct {
	*alertmanager.Forwarder // nil when IOC_ALERTMANAGER_URL is empty
	stop                    func()
}

// startForwarder starts sending alerts to IOC_ALERTMANAGER_URL. It runs
// on its own context, not iocd's: the transitions decided while the
// pipeline drains on SIGTERM still go out, and stop (after the drain)
// gives what is queued a last short attempt.
func startForwarder(cfg config.Config, silences *silence.Store, m *metrics.Metrics, log zerolog.Logger) (forwarder, error) {
	if len(cfg.AlertmanagerURL) == 0 {
		return forwarder{stop: func() {}}, nil
	}
	f, err := alertmanager.New(alertmanager.Config{URLs: cfg.AlertmanagerURL, Resend: cfg.AlertmanagerResend.D(),
		Username: cfg.AlertmanagerUser, Password: cfg.AlertmanagerPassword, BearerToken: cfg.AlertmanagerBearerToken,
		TLSCA: cfg.AlertmanagerTLSCA, ConsoleURL: consoleURL(cfg)}, silencer{silences}, m.Registry, log)
	if err != nil {
		return forwarder{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	var urls []string
	for _, s := range f.Status() {
		urls = append(urls, s.URL)
	}
	log.Info().Strs("alertmanager", urls).Dur("resend", cfg.AlertmanagerResend.D()).Msg("forwarding alerts to Alertmanager")
	return forwarder{f, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}}, nil
}

// share is a pipeline's view of the bridge, nil when there is none.
func (f forwarder) share() *alertmanager.Share {
	if f.Forwarder == nil {
		return nil
	}
	return f.Share()
}

// status is what GET /api/v1/status tells of the bridge.
func (f forwarder) status() []alertmanager.TargetStatus {
	if f.Forwarder == nil {
		return []alertmanager.TargetStatus{}
	}
	return f.Status()
}

// consoleURL is IOC_CONSOLE_URL, or this host's name on the HTTP port.
func consoleURL(cfg config.Config) string {
	if cfg.ConsoleURL != "" {
		return cfg.ConsoleURL
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil || port == "" {
		port = "8080"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
