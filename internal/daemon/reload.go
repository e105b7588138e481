package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	rulepack "github.com/iocstream/iocstream/deployments/rules"
	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/metrics"
)

// loadRules reads and checks a rules file, or the built-in Huế pack.
func loadRules(file string) ([]alert.Rule, []byte, error) {
	data, err := readRules(file)
	if err != nil {
		return nil, nil, fmt.Errorf("rules file (IOC_RULES): %w", err)
	}
	rules, err := alert.ParseRules(data)
	if err != nil {
		return nil, data, fmt.Errorf("rules file %s: %w", file, err)
	}
	return rules, data, nil
}

func readRules(file string) ([]byte, error) {
	if file == rulepack.Builtin {
		return rulepack.Hue, nil
	}
	return os.ReadFile(file)
}

// ruleSetter takes a new rule set; *alert.Engine implements it.
type ruleSetter interface {
	SetRules(rules []alert.Rule)
}

// watchRules reloads the rules file on SIGHUP and when its content
// changes (checked every interval: polling needs no platform-specific
// watcher and sees edits through symlink swaps such as Kubernetes
// ConfigMaps). A broken file keeps the running rules, says why in the log
// and sets ioc_rules_last_reload_success to 0.
func watchRules(ctx context.Context, file string, loaded []byte, interval time.Duration, engine ruleSetter, m *metrics.Metrics, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := loaded // the content of the last attempt, good or bad
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-tick.C:
			data, err := readRules(file)
			if err != nil || bytes.Equal(data, last) {
				continue // a file being replaced may be briefly absent
			}
			why = "file changed"
		}
		rules, data, err := loadRules(file)
		last = data
		if err != nil {
			m.RulesReloadOK.Set(0)
			m.RulesReloads.WithLabelValues("error").Inc()
			ev := log.Error().Str("file", file).Str("trigger", why)
			var errs alert.Errors
			if errors.As(err, &errs) {
				msgs := make([]string, len(errs))
				for i, e := range errs {
					msgs[i] = fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
				}
				ev = ev.Strs("problems", msgs)
			} else {
				ev = ev.Err(err)
			}
			ev.Msg("rules not reloaded; the previous rules keep running")
			continue
		}
		engine.SetRules(rules)
		m.RulesReloadOK.Set(1)
		m.RulesReloads.WithLabelValues("ok").Inc()
		m.RulesLoaded.Set(float64(len(rules)))
		log.Info().Str("file", file).Str("trigger", why).Int("rules", len(rules)).Msg("rules reloaded")
	}
}
