//! Instruction counts of `decide` at rest, independent of machine load: run
//! under callgrind collecting only inside `decide`, once with 0 and once with
//! N calls after the set-up; the difference divided by N is the count of one
//! call. `benches/decide-instructions.sh` does exactly that.

use std::hint::black_box;

use benches::observations;
use spalding_core::decide;

fn main() {
    let partners: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let calls: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let (_, at_rest) = observations(partners);
    for _ in 0..calls {
        black_box(decide(black_box(&at_rest)));
    }
    println!("{calls} calls of decide at rest with {partners} partners");
}
