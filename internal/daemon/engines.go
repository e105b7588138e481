package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	rulepack "github.com/iocstream/iocstream/deployments/rules"
	"github.com/iocstream/iocstream/internal/alert"
	"github.com/iocstream/iocstream/internal/config"
	"github.com/iocstream/iocstream/internal/metrics"
)

// engines is the alert side shared by a process: the rules file's
// current rules and every live engine (one, or one per owned partition).
// The rules watcher and acknowledgements reach every engine through it.
type engines struct {
	mu    sync.Mutex
	rules []alert.Rule
	set   map[*alert.Engine]struct{}
}

func (e *engines) SetRules(rules []alert.Rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = rules
	for eng := range e.set {
		eng.SetRules(rules)
	}
}

func (e *engines) current() []alert.Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rules
}

// rule finds a rule in force by name (the console charts its levels).
func (e *engines) rule(name string) (alert.Rule, bool) {
	for _, r := range e.current() {
		if r.Name == name {
			return r, true
		}
	}
	return alert.Rule{}, false
}

// add registers a new engine and gives it the current rules: the file may
// have been reloaded since the engine was built.
func (e *engines) add(eng *alert.Engine) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set[eng] = struct{}{}
	eng.SetRules(e.rules)
}

func (e *engines) remove(eng *alert.Engine) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.set, eng)
}

// Act goes to every engine; those without the fingerprint ignore it.
func (e *engines) Act(fingerprint string, a alert.Action) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for eng := range e.set {
		eng.Act(fingerprint, a)
	}
}

// loadAlerting loads the rules file and starts watching it. With IOC_RULES
// empty, alerting is off and it returns nil.
func loadAlerting(ctx context.Context, cfg config.Config, m *metrics.Metrics, log zerolog.Logger) (*engines, error) {
	if cfg.Rules == "" {
		log.Warn().Msg("IOC_RULES is empty: alerting is off")
		return nil, nil
	}
	rules, data, err := loadRules(cfg.Rules)
	if err != nil {
		return nil, err
	}
	pack := cfg.Rules
	if pack == rulepack.Builtin {
		pack = "the Huế pack built into iocd (" + rulepack.Builtin + ")"
	}
	log.Info().Str("rules", pack).Int("count", len(rules)).Msg("alert rules in force")
	m.RulesLoaded.Set(float64(len(rules)))
	m.RulesReloadOK.Set(1)
	e := &engines{rules: rules, set: map[*alert.Engine]struct{}{}}
	go watchRules(ctx, cfg.Rules, data, 2*time.Second, e, m, log)
	return e, nil
}

// alertAPI is what the HTTP API serves: the live board, and operators'
// actions handed to the engines.
type alertAPI struct {
	*alert.Board
	act func(fingerprint string, a alert.Action)
}

func (a alertAPI) Act(fingerprint string, act alert.Action) { a.act(fingerprint, act) }
