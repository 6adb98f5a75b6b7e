DROP TABLE duplicated;
