"""Analysis of indexed memories: clusters of one user's memories (`clusters`) and duplicate pairs
(`duplicates`), both over the memory vectors that `memories` keeps."""
