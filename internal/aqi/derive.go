package aqi

import (
	"sort"

	"github.com/iocstream/iocstream/internal/window"
)

// Metric is the derived metric the hourly index is stored under in
// window_agg, so that rules and dashboards read it like any other window.
const Metric = "vn_aqi"

// The rows a Deriver reads and writes: CONTRACT.md section 2 names the
// air-quality events "environment"/"air_quality", with every pollutant in
// µg/m³, the unit of the breakpoint table.
const (
	airKind  = "environment"
	airType  = "air_quality"
	minuteMs = int64(60_000)
	hourMs   = int64(3_600_000)
)

const (
	// nowCastHours is how many hourly means the index of one hour reads:
	// the hour itself and the 11 before it.
	nowCastHours = int64(len(Hours{}))
	// correctionHours is how far behind a station's newest hour a late
	// correction is still applied (and re-emitted). The window package only
	// corrects inside its correction horizon (1 h by default), so 12 h is
	// ample; anything older is ignored.
	correctionHours = 12
	// keptHours is how many hours before the newest one a station keeps:
	// re-emitting the oldest correctable hour needs its own 11 hours of
	// history, so the hourly means reach 23 hours back.
	keptHours = correctionHours + nowCastHours - 1
)

// Deriver turns final 1-minute air-quality window rows into the hourly
// VN_AQI of each station (the row's source), per Decision 1459/QĐ-TCMT.
//
// Hour H of a station covers [H, H+1h) and its index uses hourly means
// with H as the newest hour (Hours index 0) and H−1h … H−11h before it: the
// 12 most recent hours including the one being computed, as the NowCast
// formula of the Decision and DOMAIN.md define it. The hourly mean of a
// pollutant is Σsum/Σcount over the hour's minute rows, the value a
// 1-hour window would give (CONTRACT.md: averages are sum/count).
//
// An hour is complete, and its row due, once a final pollutant row of the
// same station starts at H+1h or later: a station's own clock decides, as
// for windows, so a station that goes silent has its last hour emitted
// when it reports again. Hours without data produce no row, nor do hours
// whose index cannot be computed (no PM2.5 or PM10 with 2 of the last 3
// hours, as Hourly requires).
//
// A final row arriving again for the same (source, pollutant, minute)
// replaces the earlier one. If its hour was already complete, that hour
// and the following 11 complete hours, whose NowCast read it, are
// recomputed and emitted again; the store keeps the newest version.
// Corrections more than 12 hours behind the station's newest hour are
// ignored.
//
// Memory per station: the per-minute sum and count of every pollutant for
// the 13 hours that can still be corrected (exact replacement needs the
// old minute), and per-pollutant hourly sums and counts for the 24 hours
// those need: at most 13·6·60 minute cells of 16 bytes (about 75 KB) plus
// 24 small hour records. Stations are never forgotten; a silent one keeps
// its last state so its last hour can still be emitted.
//
// A Deriver has no global state and is not safe for concurrent use: one
// pipeline goroutine owns it.
type Deriver struct {
	stations map[string]*station
	touched  []*station // stations changed by the current call
}

type station struct {
	name   string
	seen   bool  // newest is valid
	newest int64 // start of the newest hour with data
	hours  map[int64]*hourSlot

	// Bookkeeping of the current Add, reset at its end.
	touched          bool
	seenBefore       bool
	newestBefore     int64
	corrected        bool
	corrFrom, corrTo int64 // hours before newestBefore whose data changed
}

// hourSlot is one hour of one station. It exists only once a row was
// applied to it, so an existing slot always has data.
type hourSlot struct {
	area string // the area of the last row applied, so a re-emission keeps the row's key
	pol  []pollutantHour
}

type pollutantHour struct {
	sum   float64
	count uint64
	// minutes holds each minute's row so a correction replaces it exactly;
	// nil when there are no rows or the hour is beyond correctionHours.
	minutes *[60]minuteCell
}

type minuteCell struct {
	sum   float64
	count uint64
}

// NewDeriver returns a Deriver with no history.
func NewDeriver() *Deriver {
	return &Deriver{stations: make(map[string]*station)}
}

// Add feeds window rows and appends to dst the hourly index rows that
// became due, one per (station, hour) at most, ordered by source and hour.
// Rows that are not final 1-minute air-quality pollutant rows are ignored.
func (d *Deriver) Add(dst []window.Row, rows []window.Row) []window.Row {
	d.apply(rows, true)
	// Sorted so the output does not depend on map order.
	sort.Slice(d.touched, func(i, j int) bool { return d.touched[i].name < d.touched[j].name })
	for _, st := range d.touched {
		dst = st.emit(dst)
		st.prune(true)
		st.touched, st.corrected = false, false
	}
	d.touched = d.touched[:0]
	return dst
}

// Restore feeds rows read back from window_agg at start-up, in any order
// and over any number of calls, and emits nothing: the hours they complete
// were emitted before the restart. Read each station's rows from
// RestoreFromMs of its newest row on, so that NowCast and corrections have
// their history.
func (d *Deriver) Restore(rows []window.Row) {
	d.apply(rows, false)
	for _, st := range d.touched {
		// Minute cells stay until the next Add: a later Restore call may
		// still bring rows of those hours.
		st.prune(false)
		st.touched, st.corrected = false, false
	}
	d.touched = d.touched[:0]
}

// RestoreFromMs is the earliest window start Restore needs for a station
// whose newest window row starts at latestMs.
func (d *Deriver) RestoreFromMs(latestMs int64) int64 {
	return hourOf(latestMs) - keptHours*hourMs
}

func (d *Deriver) apply(rows []window.Row, live bool) {
	for i := range rows {
		r := &rows[i]
		if !r.Final || r.SizeMs != minuteMs || r.Count == 0 || r.Kind != airKind || r.Type != airType {
			continue
		}
		p := pollutantIndex(r.Metric)
		if p < 0 {
			continue
		}
		st := d.station(r.Source)
		if !st.touched {
			st.touched = true
			st.seenBefore, st.newestBefore = st.seen, st.newest
			d.touched = append(d.touched, st)
		}
		h := hourOf(r.StartMs)
		// Checked against the newest hour before this call, so the order of
		// rows inside one call does not matter. Restore takes every row: its
		// rows may come newest first.
		if live && st.seenBefore && h < st.newestBefore-correctionHours*hourMs {
			continue
		}
		if !st.seen || h > st.newest {
			st.seen, st.newest = true, h
		}
		slot := st.hours[h]
		if slot == nil {
			slot = &hourSlot{pol: make([]pollutantHour, len(Pollutants))}
			st.hours[h] = slot
		}
		slot.area = r.Area
		if !slot.pol[p].set(int((r.StartMs-h)/minuteMs), r.Sum, r.Count) {
			continue
		}
		if st.seenBefore && h < st.newestBefore {
			if !st.corrected || h < st.corrFrom {
				st.corrFrom = h
			}
			if !st.corrected || h > st.corrTo {
				st.corrTo = h
			}
			st.corrected = true
		}
	}
}

func (d *Deriver) station(name string) *station {
	st := d.stations[name]
	if st == nil {
		st = &station{name: name, hours: make(map[int64]*hourSlot)}
		d.stations[name] = st
	}
	return st
}

// set replaces a minute's row and reports whether anything changed. The
// hourly totals are summed again in minute order rather than adjusted, so
// they do not depend on the order rows and corrections arrived in.
func (ph *pollutantHour) set(minute int, sum float64, count uint64) bool {
	if ph.minutes == nil && ph.count > 0 {
		// The minutes were dropped: the hour is beyond correction and a row
		// could only be added, not replaced.
		return false
	}
	if ph.minutes == nil {
		ph.minutes = new([60]minuteCell)
	}
	c := &ph.minutes[minute]
	if c.sum == sum && c.count == count {
		return false
	}
	c.sum, c.count = sum, count
	ph.sum, ph.count = 0, 0
	for _, m := range ph.minutes {
		ph.sum += m.sum
		ph.count += m.count
	}
	return true
}

// emit appends the rows of the hours that became complete in this call and
// of the complete hours a correction reached.
func (st *station) emit(dst []window.Row) []window.Row {
	var due []int64
	for h := range st.hours {
		if h >= st.newest {
			continue // not complete yet
		}
		fresh := !st.seenBefore || h >= st.newestBefore
		reached := st.corrected && h >= st.corrFrom && h <= st.corrTo+(nowCastHours-1)*hourMs
		if fresh || reached {
			due = append(due, h)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i] < due[j] })
	for _, h := range due {
		res, ok := Hourly(st.series(h))
		if !ok {
			continue
		}
		v := float64(res.Value)
		dst = append(dst, window.Row{
			StartMs: h, SizeMs: hourMs,
			Kind: airKind, Type: airType, Metric: Metric, Area: st.hours[h].area, Source: st.name,
			Count: 1, Sum: v, Min: v, Max: v, First: v, Last: v,
			Final: true,
		})
	}
	return dst
}

// series builds the 12 hourly means of every pollutant for hour h.
func (st *station) series(h int64) map[string]Hours {
	out := make(map[string]Hours, len(Pollutants))
	for i := range nowCastHours {
		slot := st.hours[h-int64(i)*hourMs]
		if slot == nil {
			continue
		}
		for p, name := range Pollutants {
			ph := &slot.pol[p]
			if ph.count == 0 {
				continue
			}
			s, ok := out[name]
			if !ok {
				s = Missing()
			}
			s[i] = ph.sum / float64(ph.count)
			out[name] = s
		}
	}
	return out
}

// prune forgets the hours no correction or NowCast can read any more and,
// when dropMinutes is set, the minute cells of hours beyond correction.
func (st *station) prune(dropMinutes bool) {
	for h, slot := range st.hours {
		switch {
		case h < st.newest-keptHours*hourMs:
			delete(st.hours, h)
		case dropMinutes && h < st.newest-correctionHours*hourMs:
			for p := range slot.pol {
				slot.pol[p].minutes = nil
			}
		}
	}
}

func pollutantIndex(metric string) int {
	for i, p := range Pollutants {
		if p == metric {
			return i
		}
	}
	return -1
}

// hourOf returns the start of the UTC, epoch-aligned hour holding ms,
// rounding down before 1970 too.
func hourOf(ms int64) int64 {
	q := ms / hourMs
	if ms%hourMs < 0 {
		q--
	}
	return q * hourMs
}
