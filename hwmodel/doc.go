// Package hwmodel describes the hardware E3 runs on and what work costs on
// it: the machines and clusters of the paper's Table 4, the LiquidIO II
// SmartNIC, the per-microservice calibration of Table 1, and the power and
// cost models derived from them.
//
// Everything here is data plus arithmetic. Figures taken from the paper keep
// the paper's numbers and say so; figures the paper does not give are derived
// by a stated rule, and docs/MODEL.md lists each with its reasoning. Nothing
// is tuned toward a published result.
//
// The three questions other packages ask:
//
//   - How long does one request of microservice m keep a core of kind k
//     busy? [Demand].
//   - How much wall power does a server draw at given core utilisations?
//     [Machine.Power].
//   - How many requests per dollar does a cluster deliver over T years?
//     [CostEfficiency].
package hwmodel
