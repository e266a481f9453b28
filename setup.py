from setuptools import find_packages, setup

setup(
    name="fairseq-sigmoid-qe",
    version="0.1.0",
    description="Sigmoid-head unsupervised quality estimation for Fairseq translation models",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["fairseq_sigmoid_qe", "fairseq_sigmoid_qe.*"]),
    python_requires=">=3.9",
    install_requires=["torch", "numpy", "scipy", "sacrebleu", "sentencepiece"],
    extras_require={"test": ["pytest", "boostedprob==0.1.3"], "plot": ["matplotlib"]},
    entry_points={
        "console_scripts": [
            "fairseq-sigmoid-qe-quickstart=fairseq_sigmoid_qe.quickstart:main",
            "fairseq-sigmoid-qe=fairseq_sigmoid_qe.hub:main",
            "fairseq-sigmoid-qe-evaluate=fairseq_sigmoid_qe.evaluate:main",
        ]
    },
)
