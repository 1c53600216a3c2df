set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
O=$OUT; export OUT=$O/dense_h100_shared
GPUS=1 LIMIT=8.35 bash benchmarks/dense_scenes.sh 6 data.root=.data/fashion-mnist 2>&1 | tail -16
cd $O && tar czf dense.tgz dense_h100_shared && rm -rf dense_h100_shared
