package grafana

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// Result is what one panel's query returned, for a picture.
type Result struct {
	Panel   Panel
	Columns []string
	Rows    [][]any // time.Time, numbers, strings
}

// seriesColours are a dark-theme palette of distinct lines.
var seriesColours = []string{"#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a"}

// Page draws a dashboard's results as one HTML page of SVG panels on a
// 24-column grid as Grafana lays them out, so a picture of it shows what
// the dashboard shows without Grafana. Time series are lines (one per
// value column, or per label when the second column is a string), the
// rest tables of their first rows; all text is escaped.
func Page(d Dashboard, results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html lang="vi"><head><meta charset="utf-8"><style>
body{background:#111217;color:#ccccdc;font:13px "DejaVu Sans",sans-serif;margin:0;padding:12px;width:1576px}
h1{font-size:20px;margin:0 0 4px}p.d{margin:0 0 10px;color:#8e8e9e}
.g{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:30px;gap:6px}
.p{background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:6px;overflow:hidden}
.p h2{font-size:13px;margin:0 0 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
table{border-collapse:collapse;width:100%%;font-size:11px}td,th{border-bottom:1px solid #2c3235;padding:2px 4px;text-align:left;white-space:nowrap}
.stat{font-size:34px;font-weight:bold;color:#73bf69}</style></head><body><h1>%s</h1><p class="d">%s</p><div class="g">`,
		html.EscapeString(d.Title), html.EscapeString(d.Description))
	for _, r := range results {
		p := r.Panel
		gp := p.GridPos
		fmt.Fprintf(&b, `<div class="p" style="grid-column:%d / span %d;grid-row:%d / span %d"><h2>%s <small>(%s)</small></h2>`,
			gp.X+1, max(gp.W, 1), gp.Y+1, max(gp.H, 1), html.EscapeString(p.Title), html.EscapeString(p.FieldConfig.Defaults.Unit))
		switch {
		case len(r.Rows) == 0:
			b.WriteString(`<p>—</p>`)
		case p.Type == "timeseries" || p.Type == "state-timeline" || isTime(r.Rows[0][0]) && p.Type != "table":
			b.WriteString(lines(r, gp.W*64-20, gp.H*36-40))
		case p.Type == "stat" && len(r.Rows[0]) >= 1:
			last := r.Rows[len(r.Rows)-1]
			b.WriteString(`<div class="stat">` + html.EscapeString(cell(last[len(last)-1])) + `</div>`)
		default:
			b.WriteString(table(r, gp.H))
		}
		b.WriteString(`</div>`)
	}
	b.WriteString(`</div></body></html>`)
	return b.String()
}

func isTime(v any) bool { _, ok := v.(time.Time); return ok }

func cell(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.In(time.FixedZone("ICT", 7*3600)).Format("02/01 15:04")
	case float64:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", x), "0"), ".")
	case float32:
		return cell(float64(x))
	}
	return fmt.Sprint(v)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return number(float64(x))
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	}
	return 0, false
}

// lines draws the time series of a result.
func lines(r Result, w, h int) string {
	type pt struct{ t, v float64 }
	series := map[string][]pt{}
	for _, row := range r.Rows {
		t, ok := row[0].(time.Time)
		if !ok {
			continue
		}
		label := ""
		first := 1
		if len(row) > 2 {
			if s, ok := row[1].(string); ok {
				label, first = s, 2
			}
		}
		for i := first; i < len(row); i++ {
			if v, ok := number(row[i]); ok {
				name := r.Columns[i]
				if label != "" {
					name = label
					if len(row)-first > 1 {
						name += " " + r.Columns[i]
					}
				}
				series[name] = append(series[name], pt{float64(t.Unix()), v})
			}
		}
	}
	minT, maxT, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s {
			minT, maxT, minV, maxV = math.Min(minT, p.t), math.Max(maxT, p.t), math.Min(minV, p.v), math.Max(maxV, p.v)
		}
	}
	if maxT <= minT || math.IsInf(minV, 0) {
		return `<p>—</p>`
	}
	if maxV == minV {
		maxV++
	}
	var names []string
	for n := range series {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = names[:8] // a picture, not the dashboard: the first eight series
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" font-size="10">`, w, h)
	x := func(t float64) float64 { return 40 + (t-minT)/(maxT-minT)*float64(w-50) }
	y := func(v float64) float64 { return float64(h-30) - (v-minV)/(maxV-minV)*float64(h-40) }
	for _, v := range []float64{minV, (minV + maxV) / 2, maxV} {
		fmt.Fprintf(&b, `<line x1="40" x2="%d" y1="%.1f" y2="%.1f" stroke="#2c3235"/><text x="2" y="%.1f" fill="#8e8e9e">%s</text>`,
			w-10, y(v), y(v), y(v)+3, html.EscapeString(cell(v)))
	}
	for _, t := range []float64{minT, (minT + maxT) / 2, maxT} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#8e8e9e" text-anchor="middle">%s</text>`, x(t), h-16,
			html.EscapeString(cell(time.Unix(int64(t), 0))))
	}
	for i, n := range names {
		var pts []string
		for _, p := range series[n] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.t), y(p.v)))
		}
		c := seriesColours[i%len(seriesColours)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`, 40+i*(w-50)/max(len(names), 1), h-2, c, html.EscapeString(n))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func table(r Result, h int) string {
	var b strings.Builder
	b.WriteString(`<table><tr>`)
	for _, c := range r.Columns {
		b.WriteString(`<th>` + html.EscapeString(c) + `</th>`)
	}
	b.WriteString(`</tr>`)
	for i, row := range r.Rows {
		if i >= max(h-2, 1) {
			break
		}
		b.WriteString(`<tr>`)
		for _, v := range row {
			b.WriteString(`<td>` + html.EscapeString(cell(v)) + `</td>`)
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</table>`)
	return b.String()
}
