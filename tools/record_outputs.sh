#!/bin/bash
# usage: tools/record_outputs.sh REPO OUTDIR
# Records the outputs of every command (--json, C source, Markdown report) for a fixed set of inputs with
# the code of checkout REPO (its .venv), so that a refactoring can be shown to change nothing:
#   git worktree add /tmp/before <commit> && (cd /tmp/before && ./test.sh tests/test_smoke.py)
#   tools/record_outputs.sh /tmp/before /tmp/out-before && tools/record_outputs.sh . /tmp/out-after
#   python3 tools/compare_outputs.py /tmp/out-before /tmp/out-after     # prints "N files, 0 differ"
set -u
REPO=$(cd "$1" && pwd); mkdir -p "$2"; OUT=$(cd "$2" && pwd); cd "$REPO"
C="$REPO/.venv/bin/python -m convsched"
export CONVSCHED_CACHE_DIR=
EX=src/convsched/data/example_schedule.json
for net in alexnet zfnet vgg16 resnet18 resnet50 mobilenet_v2 googlenet; do
  for buf in 16KiB 64KiB; do $C optimize $net --buffer $buf --json $OUT/optimize-$net-$buf.json >/dev/null 2>&1; done
  $C layers $net --json $OUT/layers-$net.json >/dev/null 2>&1
done
$C optimize resnet18 --buffer 64KiB --bits 16 --psum-bits 32 --json $OUT/optimize-resnet18-16bit.json >/dev/null 2>&1
$C optimize resnet18 --buffer 64KiB --objective reads --json $OUT/optimize-resnet18-reads.json >/dev/null 2>&1
$C optimize mobilenet_v2 --buffer 32KiB --double-buffer --json $OUT/optimize-mbv2-db.json >/dev/null 2>&1
$C optimize K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1 --buffer 8KiB --order K,C,OY,OX --json $OUT/optimize-constrained.json >/dev/null 2>&1
$C optimize src/convsched/data/example_network.yaml --buffer 16KiB --json $OUT/optimize-example-net.json >/dev/null 2>&1
$C sweep vgg16 --buffer 8KiB..1MiB --points 6 --json $OUT/sweep-vgg16.json >/dev/null 2>&1
$C sweep mobilenet_v2 --buffer 4KiB..256KiB --points 4 --json $OUT/sweep-mbv2.json >/dev/null 2>&1
$C evaluate $EX --json $OUT/evaluate-example.json >/dev/null 2>&1
$C evaluate $EX --bits 4 --psum-bits 16 --json $OUT/evaluate-example-4bit.json >/dev/null 2>&1
$C simulate $EX --json $OUT/simulate-example.json >/dev/null 2>&1
$C simulate $EX --seed 7 --json $OUT/simulate-example-seed7.json >/dev/null 2>&1
$C run-c $EX --json $OUT/runc-example.json >/dev/null 2>&1
$C codegen $EX -o $OUT/codegen-example.c >/dev/null 2>&1
$C hwc alexnet --compare hwce --json $OUT/hwc-alexnet.json >/dev/null 2>&1
$C hwc resnet18 --compare hwce --json $OUT/hwc-resnet18.json >/dev/null 2>&1
$C hwc mobilenet_v2 --sweep 16KiB..64KiB --json $OUT/hwc-mbv2-sweep.json >/dev/null 2>&1
$C report resnet18 --buffer 64KiB -o $OUT/report-resnet18.md >/dev/null 2>&1
$C report mobilenet_v2 --buffer 16KiB -o $OUT/report-mbv2.md >/dev/null 2>&1
ls $OUT | wc -l
