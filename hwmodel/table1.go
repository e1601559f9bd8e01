package hwmodel

// Stack is a way of running a microservice measured in Table 1.
type Stack uint8

const (
	// HostKernel is a host CPU with the Linux network stack.
	HostKernel Stack = iota
	// HostBypass is a host CPU with a DPDK kernel-bypass stack. E3 runs
	// host microservices this way; it is the host figure placement uses.
	HostBypass
	// SmartNIC is the LiquidIO II with its kernel-bypass firmware runtime.
	SmartNIC
)

func (s Stack) String() string {
	switch s {
	case HostKernel:
		return "host-kernel"
	case HostBypass:
		return "host-bypass"
	case SmartNIC:
		return "smartnic"
	}
	return "unknown"
}

// Measurement is one cell group of Table 1: a microservice alone on one
// server, random 512 B requests, at peak throughput.
type Measurement struct {
	RPS     float64 // peak requests per second
	ActiveW float64 // wall power at peak minus idle wall power
	// Cores is the number of active cores. The paper gives it for the host
	// only; the SmartNIC keeps all 12 cores active (no per-core sleep).
	Cores int
	AvgMs float64 // average client-observed latency
	P99Ms float64 // 99th percentile client-observed latency
	// RPJ is the table's printed energy efficiency (requests per joule of
	// active power), kept as printed so a test can check it against RPS/W.
	RPJ string
}

// Calibration is Table 1's row for one microservice.
type Calibration struct {
	Service string
	Stacks  [3]Measurement // indexed by Stack
	// BypassGainPct is the printed "%" column: RPJ gain of kernel bypass
	// over the kernel stack.
	BypassGainPct float64
	// NICRatio is the printed "×" column: SmartNIC RPJ over host
	// (kernel-bypass) RPJ.
	NICRatio float64
}

// NICCores is the number of cores of the LiquidIO II, all active whenever it
// runs (Table 1's SmartNIC column has no core count because of that).
const NICCores = 12

// table1 is Table 1 of the paper, transcribed. Service names are E3's
// registry names.
var table1 = []Calibration{
	{"ipsec", [3]Measurement{
		{821.3e3, 117.0, 12, 1.8, 6.6, "7.0K"},
		{911.9e3, 112.1, 12, 1.7, 5.2, "8.1K"},
		{1851.1e3, 23.4, NICCores, 0.2, 0.8, "79.0K"}}, 15.9, 9.7},
	{"bm25", [3]Measurement{
		{91.9e3, 116.4, 12, 40.3, 205.8, "0.8K"},
		{99.5e3, 110.0, 12, 30.7, 155.6, "0.9K"},
		{394.1e3, 19.2, NICCores, 4.1, 12.4, "20.6K"}}, 14.5, 22.8},
	{"nids", [3]Measurement{
		{1781.1e3, 111.0, 12, 0.06, 0.2, "16.1K"},
		{1841.1e3, 106.8, 12, 0.05, 0.15, "17.2K"},
		{1988.8e3, 23.4, NICCores, 0.03, 0.1, "84.8K"}}, 7.4, 4.9},
	{"recommend", [3]Measurement{
		{3.6e3, 109.4, 12, 86.6, 477.0, "0.03K"},
		{4.1e3, 111.7, 12, 78.7, 358.6, "0.04K"},
		{12.8e3, 18.9, NICCores, 21.3, 123.6, "0.7K"}}, 11.6, 18.4},
	{"natv4", [3]Measurement{
		{1889.6e3, 72.1, 8, 0.04, 0.1, "26.2K"},
		{1917.5e3, 52.1, 4, 0.04, 0.1, "36.8K"},
		{2053.1e3, 23.6, NICCores, 0.03, 0.09, "86.9K"}}, 40.4, 2.4},
	{"count", [3]Measurement{
		{1960.8e3, 68.1, 6, 0.07, 0.1, "28.8K"},
		{1960.0e3, 48.6, 4, 0.03, 0.1, "40.3K"},
		{2016.8e3, 21.0, NICCores, 0.03, 0.09, "96.1K"}}, 40.0, 2.4},
	{"ema", [3]Measurement{
		{1966.1e3, 72.7, 8, 0.04, 0.2, "27.0K"},
		{2009.2e3, 52.1, 4, 0.03, 0.09, "38.6K"},
		{2052.0e3, 22.0, NICCores, 0.03, 0.08, "93.5K"}}, 42.8, 2.4},
	{"kvs", [3]Measurement{
		{1946.2e3, 48.6, 8, 0.04, 0.1, "40.0K"},
		{2005.0e3, 33.6, 2, 0.04, 0.1, "59.6K"},
		{2033.4e3, 21.6, NICCores, 0.03, 0.1, "97.1K"}}, 49.0, 1.6},
	{"flowmon", [3]Measurement{
		{1944.1e3, 70.9, 8, 0.04, 0.1, "27.4K"},
		{2014.4e3, 49.8, 4, 0.03, 0.09, "40.4K"},
		{2032.6e3, 24.3, NICCores, 0.03, 0.08, "83.6K"}}, 47.4, 2.1},
	{"ddos", [3]Measurement{
		{1989.5e3, 111.2, 12, 0.05, 0.2, "17.9K"},
		{1844.8e3, 105.7, 12, 0.05, 0.2, "17.4K"},
		{1952.5e3, 24.3, NICCores, 0.03, 0.1, "80.4K"}}, -3.0, 4.6},
	{"knn", [3]Measurement{
		{42.2e3, 118.3, 12, 53.7, 163.4, "0.4K"},
		{42.4e3, 110.4, 12, 45.8, 161.3, "0.4K"},
		{29.9e3, 20.0, NICCores, 20.6, 80.3, "1.5K"}}, 7.5, 3.9},
	{"spike", [3]Measurement{
		{91.9e3, 112.5, 12, 29.3, 94.5, "0.8K"},
		{104.3e3, 112.3, 12, 25.7, 83.0, "0.9K"},
		{73.8e3, 23.5, NICCores, 9.0, 50.3, "3.1K"}}, 13.7, 3.4},
	{"bayes", [3]Measurement{
		{12.1e3, 113.9, 12, 82.0, 406.5, "0.1K"},
		{13.7e3, 112.0, 12, 80.6, 400.5, "0.1K"},
		{1.6e3, 19.5, NICCores, 41.9, 164.7, "0.08K"}}, 14.8, 0.7},
	{"apigw", [3]Measurement{
		{1537.6e3, 108.5, 12, 0.9, 3.2, "14.2K"},
		{1584.3e3, 110.6, 12, 0.8, 2.7, "14.3K"},
		{124.5e3, 24.7, NICCores, 8.5, 403.6, "5.0K"}}, 1.1, 0.4},
	{"topk", [3]Measurement{
		{711.9e3, 119.7, 12, 4.0, 15.0, "5.9K"},
		{771.9e3, 109.2, 12, 3.5, 12.3, "7.1K"},
		{14.8e3, 20.3, NICCores, 31.1, 154.9, "0.7K"}}, 18.9, 0.1},
	{"sql", [3]Measurement{
		{463.3e3, 114.7, 12, 6.9, 31.1, "4.0K"},
		{528.0e3, 113.0, 12, 6.7, 29.5, "4.7K"},
		{39.5e3, 18.8, NICCores, 29.5, 104.2, "2.1K"}}, 15.7, 0.4},
}

// Table1 returns a copy of Table 1, in the paper's row order.
func Table1() []Calibration { return append([]Calibration(nil), table1...) }

// Lookup returns the calibration of a microservice by registry name.
func Lookup(service string) (Calibration, bool) {
	for _, c := range table1 {
		if c.Service == service {
			return c, true
		}
	}
	return Calibration{}, false
}

// RPJComputed returns requests per joule of active power, RPS / W.
func (m Measurement) RPJComputed() float64 { return m.RPS / m.ActiveW }
