package loadgen

import (
	"testing"
	"time"
)

func TestFakeClockOrder(t *testing.T) {
	clk := NewFakeClock(100)
	var got []int64
	var order []string
	at := func(name string) func() {
		return func() { got = append(got, clk.Now()); order = append(order, name) }
	}
	clk.AfterFunc(30, at("c"))
	clk.AfterFunc(10, at("a"))
	stopped := clk.AfterFunc(20, at("never"))
	clk.AfterFunc(10, at("b")) // same deadline as a: fires after it
	clk.AfterFunc(-5, at("now"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must succeed once")
	}
	clk.Advance(15)
	if clk.Now() != 115 || len(order) != 3 {
		t.Fatalf("after Advance(15): now %d, fired %v", clk.Now(), order)
	}
	clk.AfterFunc(0, func() { clk.AfterFunc(1, at("nested")) })
	if n := clk.Run(); n != 3 {
		t.Fatalf("Run fired %d", n)
	}
	wantOrder := []string{"now", "a", "b", "nested", "c"}
	wantAt := []int64{100, 110, 110, 116, 130}
	for i := range wantOrder {
		if order[i] != wantOrder[i] || got[i] != wantAt[i] {
			t.Fatalf("fired %v at %v, want %v at %v", order, got, wantOrder, wantAt)
		}
	}
	if clk.Pending() != 0 || clk.Step() {
		t.Fatal("timers left")
	}
}

func TestWallAndDilatedClocks(t *testing.T) {
	w := WallClock{}
	a := w.Now()
	time.Sleep(time.Millisecond)
	if d := w.Now() - a; d < int64(time.Millisecond) {
		t.Fatalf("wall clock advanced %d ns over a 1 ms sleep", d)
	}
	d, err := NewDilatedClock(100)
	if err != nil {
		t.Fatal(err)
	}
	a = d.Now()
	time.Sleep(10 * time.Millisecond)
	// 10 ms of wall time is 100 µs emulated (more if the sleep overran; the
	// upper bound only catches a clock that does not dilate).
	if e := d.Now() - a; e < int64(100*time.Microsecond) || e >= int64(10*time.Millisecond) {
		t.Fatalf("dilated clock advanced %v over 10 ms of wall time at factor 100", time.Duration(e))
	}
	for _, f := range []float64{0, -1, 2e9} {
		if _, err := NewDilatedClock(f); err == nil {
			t.Errorf("factor %v accepted", f)
		}
	}
}

func TestLatency(t *testing.T) {
	l := NewLatency()
	if l.Mean() != 0 || l.P99() != 0 || l.Min() != 0 || l.Max() != 0 {
		t.Fatal("empty latency must report zeros")
	}
	// 1..1000 µs: p50 500 µs, p99 990 µs, within the histogram's 0.1 %.
	for i := int64(1); i <= 1000; i++ {
		l.Record(i * 1000)
	}
	check := func(name string, got, want time.Duration) {
		t.Helper()
		if !within(float64(got), float64(want), 0.001) {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}
	check("mean", l.Mean(), 500500*time.Nanosecond)
	check("p50", l.P50(), 500*time.Microsecond)
	check("p99", l.P99(), 990*time.Microsecond)
	check("p99.9", l.P999(), 999*time.Microsecond)
	if l.Max() != time.Millisecond || l.Min() != time.Microsecond || l.Quantile(1) != time.Millisecond {
		t.Errorf("min %v max %v q1 %v", l.Min(), l.Max(), l.Quantile(1))
	}
	m := NewLatency()
	m.Record(-5)                     // a clock step backwards counts as 0
	m.Record(2 * int64(histHighest)) // beyond the range: clamped in quantiles, exact in max
	c := l.Clone()
	c.Merge(m)
	if c.Count() != 1002 || c.Clamped() != 1 || c.Max() != 2*time.Hour || c.Min() != 0 || l.Count() != 1000 {
		t.Errorf("merged: n %d clamped %d max %v min %v; original n %d", c.Count(), c.Clamped(), c.Max(), c.Min(), l.Count())
	}
	if !within(float64(c.Quantile(1)), float64(histHighest), 0.001) {
		t.Errorf("q1 of clamped %v", c.Quantile(1))
	}
}
