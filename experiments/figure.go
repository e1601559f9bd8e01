package experiments

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Figure is one figure of an experiment: one or more panels side by side.
type Figure struct {
	// Name is "" for the experiment's main figure (X4.png) and a suffix
	// for the others (X9-cost.png).
	Name string
	// Caption describes the figure in RESULTS.md.
	Caption string
	// Panels are drawn left to right, Cols to a row (0: all in one row).
	Panels []*plot.Plot
	Cols   int
	// Wide doubles the width of every panel, for bar charts of many
	// categories (Table 1's sixteen microservices).
	Wide bool
}

// panelW and panelH are the size of one panel; a figure is as many
// panels as it has. Widths are chosen so that eight applications' names
// fit under their bars.
const (
	panelW = 6 * vg.Inch
	panelH = 3.6 * vg.Inch
)

func (f *Figure) grid() (cols, rows int) {
	cols = f.Cols
	if cols <= 0 || cols > len(f.Panels) {
		cols = len(f.Panels)
	}
	rows = (len(f.Panels) + cols - 1) / cols
	return cols, rows
}

// draw lays the panels out on c, aligned so their axes line up.
func (f *Figure) draw(c vg.CanvasSizer) {
	cols, rows := f.grid()
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		for k := range cols {
			if i := r*cols + k; i < len(f.Panels) {
				grid[r][k] = f.Panels[i]
			}
		}
	}
	dc := draw.New(c)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Inch / 4, PadY: vg.Inch / 4,
		PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align(grid, t, dc)
	for r := range grid {
		for k, p := range grid[r] {
			if p != nil {
				p.Draw(canvases[r][k])
			}
		}
	}
}

// Render draws the figure as "png" (96 dpi) or "svg". The output is a
// pure function of the figure: the same figure gives the same bytes.
func (f *Figure) Render(format string) ([]byte, error) {
	if len(f.Panels) == 0 {
		return nil, fmt.Errorf("experiments: figure %q has no panels", f.Name)
	}
	cols, rows := f.grid()
	w, h := panelW*vg.Length(cols), panelH*vg.Length(rows)
	if f.Wide {
		w *= 2
	}
	var b bytes.Buffer
	switch format {
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
		f.draw(c)
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
			return nil, err
		}
	case "svg":
		c := vgsvg.New(w, h)
		f.draw(c)
		if _, err := c.WriteTo(&b); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("experiments: figure format %q, want png or svg", format)
	}
	return b.Bytes(), nil
}

// series is one set of bars (one per category) or one line.
type series struct {
	Name string
	// Y holds one value per category (bars) or per X (lines); NaN leaves
	// a gap.
	Y []float64
	// X holds the x values of a line.
	X []float64
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	return p
}

// color returns the i-th series colour, the same in every figure.
func seriesColor(i int) color.Color { return plotutil.Color(i) }

// bars builds a grouped bar chart: one group per category, one bar per
// series. With logY the bars show log10 of the values over the lowest
// decade of the data, and the axis is labelled in powers of ten; values
// <= 0 or NaN draw no bar.
//
// wide must match the Figure's Wide: bar widths are absolute lengths.
func bars(title, ylabel string, cats []string, ss []series, logY, wide bool) (*plot.Plot, error) {
	p := newPlot(title, "", ylabel)
	p.Add(plotter.NewGrid())
	p.NominalX(cats...)
	if len(cats) > 6 {
		p.X.Tick.Label.Rotation = math.Pi / 8
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	base := 0.0
	if logY {
		lo := math.Inf(1)
		for _, s := range ss {
			for _, v := range s.Y {
				if v > 0 {
					lo = min(lo, v)
				}
			}
		}
		if math.IsInf(lo, 1) {
			lo = 1
		}
		base = math.Floor(math.Log10(lo))
		p.Y.Tick.Marker = decadeTicks{base: base}
	}
	n := max(len(ss), 1)
	pw := panelW
	if wide {
		pw *= 2
	}
	width := (pw - vg.Inch) / vg.Length(max(len(cats), 1)) * 0.8 / vg.Length(n)
	top := 0.0
	for i, s := range ss {
		vals := make(plotter.Values, len(cats))
		for k := range cats {
			v := math.NaN()
			if k < len(s.Y) {
				v = s.Y[k]
			}
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0) || (logY && v <= 0):
				vals[k] = 0
			case logY:
				vals[k] = math.Log10(v) - base
			default:
				vals[k] = v
			}
			top = max(top, vals[k])
		}
		b, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, err
		}
		b.Color = seriesColor(i)
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-float64(n-1)/2) * width
		p.Add(b)
		if n > 1 {
			p.Legend.Add(s.Name, b)
		}
	}
	p.Y.Min = 0
	// Leave room above the tallest bar for the legend.
	p.Y.Max = top * 1.25
	if logY {
		p.Y.Max = math.Ceil(top*1.25 + 1e-9)
	}
	if p.Y.Max == 0 {
		p.Y.Max = 1
	}
	// Whole groups: the bars' offsets reach past the category positions.
	p.X.Min, p.X.Max = -0.5, float64(len(cats))-0.5
	return p, nil
}

// lines builds a line chart with markers, one line per series. With logX
// or logY the axis is logarithmic; points with non-positive or NaN
// values on a log axis are left out.
func lines(title, xlabel, ylabel string, ss []series, logX, logY bool) (*plot.Plot, error) {
	p := newPlot(title, xlabel, ylabel)
	p.Add(plotter.NewGrid())
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for i, s := range ss {
		var pts plotter.XYs
		for k, y := range s.Y {
			x := s.X[k]
			if math.IsNaN(y) || math.IsInf(y, 0) || (logY && y <= 0) || (logX && x <= 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		l.Color = seriesColor(i)
		l.Width = vg.Points(1.5)
		sc.Color = seriesColor(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		if len(ss) > 1 {
			p.Legend.Add(s.Name, l, sc)
		}
	}
	return p, nil
}

// trimZeros drops trailing zeros after a decimal point: "10.0" -> "10".
func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// decadeTicks labels an axis that carries log10(value) - base in powers
// of ten of the value.
type decadeTicks struct{ base float64 }

// Ticks returns a major tick at every decade.
func (d decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for v := math.Ceil(lo); v <= hi+1e-9; v++ {
		ts = append(ts, plot.Tick{Value: v, Label: si(math.Pow(10, v+d.base))})
	}
	return ts
}

// si writes x with an SI suffix: 1, 10, 100, 1K, 10K, 1M...
func si(x float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
		if x >= u.f {
			return trimZeros(num(x/u.f, 3)) + u.s
		}
	}
	return trimZeros(num(x, 3))
}
